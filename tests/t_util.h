/* Shared helpers for the Check suites (prefix t_). */
#pragma once
#include <check.h>
#include <stddef.h>

/* Each test file defines the suite it contributes. */
Suite *t_suite(void);

/* Path of a file under ../shared (GI_SHARED), e.g. t_shared("models/stories260K.gguf").
 * Returns a static buffer, valid until the next call. */
const char *t_shared(const char *rel);

/* Path of a built program or file under the build dir (GI_BUILD), e.g. t_build("bin/gid"). */
const char *t_build(const char *rel);

/* Number of open file descriptors of this process (counts /proc/self/fd). */
int t_count_fds(void);

/* Reads a whole file into a malloc'd buffer; returns NULL on error. */
void *t_read_file(const char *path, size_t *ret_len);

/* Pins the calling thread to the N-th CPU it may run on, if there is one,
 * so two busy peers (producer and consumer, engine and client) run side by
 * side: the scheduler's wake-affine placement otherwise often puts both on
 * one CPU, where they take turns and cannot race at all. */
void t_pin_nth_cpu(int n);

/* Creates a fresh temporary directory and returns its path (static buffer per call site copy it). */
char *t_tmpdir(void);
