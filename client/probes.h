/* USDT probes of libgiclient (DESIGN.md "Observability"): one nop
 * instruction each until a tracer attaches (bpf/ programs, bpftrace
 * -e 'usdt:libgiclient.so:giclient:done { ... }').
 *
 *   giclient:submit  (req, tag, opcode)   request published to the SQ
 *   giclient:cancel  (req)                cancel sent
 *   giclient:token   (req, token)         a whole token handed to the app
 *   giclient:done    (req, finish)        DONE handed to the app
 *   giclient:error   (req, error)         ERROR handed to the app
 *   giclient:sleep   (wait_seq)           about to sleep on gi_conn_fd() */
#pragma once
#include <sys/sdt.h>

#define GI_PROBE1(name, a) DTRACE_PROBE1(giclient, name, a)
#define GI_PROBE2(name, a, b) DTRACE_PROBE2(giclient, name, a, b)
#define GI_PROBE3(name, a, b, c) DTRACE_PROBE3(giclient, name, a, b, c)
