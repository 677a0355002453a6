# gid build. Everything lands under $(B)/: bin/ programs, lib/ libraries,
# obj/ objects, tests/ test programs, fuzz/ fuzzers. Quiet unless V=1.
#
#   make                 build everything
#   make check           build and run every test (Check suites, scripts, fuzzers)
#   make check SANITIZE=1  the same under ASan+UBSan, plus TSan for *_mt tests
#   make bench           run the benchmarks, print their tables
#   make demo            start gid on the default model, run clients, stop it
#   make install         PREFIX=/usr/local DESTDIR=
#
# Layout conventions (no per-file rules needed):
#   ipc/*.c                  -> $(B)/lib/libgiipc.a
#   engine/*.c               -> $(B)/lib/libgiengine.a
#   kernels/*.c kernels/cpu/*.c -> $(B)/lib/libgikernels.a
#                               (*_avx2.c, *_avx512.c, *_amx.c get their ISA flags)
#   client/*.c               -> $(B)/lib/libgiclient.so.$(SOVER) and .a (with ipc/)
#   daemon/*.c               -> $(B)/bin/gid (all but daemon/main.c also in libgidaemon.a, linked into tests)
#   tools/NAME/*.c, tools/NAME.c -> $(B)/bin/NAME
#   bench/NAME.c             -> $(B)/bin/bench-NAME
#   examples/NAME.c          -> $(B)/bin/example-NAME
#   tests/**/test_*.c        -> $(B)/tests/test_* (one Check suite each, main in tests/t_main.c)
#   tests/**/test_*.sh       -> integration scripts run by tests/run.sh
#   fuzz/fuzz_*.c            -> $(B)/fuzz/fuzz_* (clang libFuzzer, run briefly by make check)
#   kernels/cuda/*.cu        -> $(B)/lib/libgicuda.a by nvcc, when there is one
#   kernels/cuda/*.cu kernels/emu/*.cc -> $(B)/lib/libgicudaemu.a by $(CXX): the same
#                               kernels on the CPU emulator, linked (with tests/emu/*.cu)
#                               into the tests under tests/emu/ only

.DELETE_ON_ERROR:
.SUFFIXES:
MAKEFLAGS += --no-builtin-rules

PREFIX  ?= /usr/local
DESTDIR ?=
SANITIZE ?=
SHARED  ?= $(abspath ../shared)
FUZZ_SECONDS ?= 8
SOVER_MAJOR := 0
SOVER := 0.2.0

ifeq ($(SANITIZE),1)
B := build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
B := build
SANFLAGS :=
endif

PKGS := liburing libbpf libelf zlib check libsystemd inih libpcre2-8
ifneq ($(shell pkg-config --exists $(PKGS) 2>/dev/null && echo "\#include <sys/sdt.h>" | $(or $(CC),cc) -E -x c - >/dev/null 2>&1 && command -v bpftool >/dev/null && echo ok),ok)
$(info deps: some build dependencies are missing; running scripts/deps.sh)
$(if $(shell scripts/deps.sh >&2 && echo ok),,$(error scripts/deps.sh failed: install the packages it names))
endif

CC      ?= cc
CLANG   ?= clang
ifeq ($(origin CC),default)
CC := gcc
endif
ifeq ($(origin CXX),default)
CXX := g++
endif
NVCC    ?= $(firstword $(wildcard /usr/local/cuda/bin/nvcc) $(shell command -v nvcc 2>/dev/null))
NVCCFLAGS ?= -O2
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN    := -Wall -Wextra -Wshadow -Wno-unused-parameter -Wstrict-prototypes -Wmissing-prototypes -Wvla
CPPFLAGS := -I. -I$(B) -D_GNU_SOURCE $(shell pkg-config --cflags $(PKGS))
ALLCFLAGS = -std=gnu11 -pthread -fPIC -fvisibility=hidden $(WARN) $(CFLAGS) $(SANFLAGS) -MMD -MP
ALLCXXFLAGS = -std=c++17 -pthread -fPIC -fvisibility=hidden -Wall -Wextra -Wshadow -Wno-unused-parameter \
	-Wvla $(CFLAGS) $(SANFLAGS) -MMD -MP
SYSLIBS := $(shell pkg-config --libs liburing libbpf libelf zlib libsystemd inih libpcre2-8) -lpthread -lm
CHECKLIBS := $(shell pkg-config --libs check)
LDFLAGS_ALL = -pthread $(SANFLAGS) $(LDFLAGS)

ifeq ($(V),1)
Q :=
say :=
else
Q := @
say = @printf '  %-7s %s\n' $(1) $(2);
endif

ISA_avx2   := -mavx2 -mfma -mf16c
ISA_avx512 := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16
ISA_amx    := $(ISA_avx512) -mamx-tile -mamx-int8 -mamx-bf16
isa_of = $(if $(filter %_amx.c,$(1)),$(ISA_amx),$(if $(filter %_avx512.c,$(1)),$(ISA_avx512),$(if $(filter %_avx2.c,$(1)),$(ISA_avx2))))

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))
comma := ,

IPC_SRCS     := $(wildcard ipc/*.c)
ENGINE_SRCS  := $(wildcard engine/*.c)
KERNEL_SRCS  := $(wildcard kernels/*.c kernels/cpu/*.c kernels/emu/*.c)
CLIENT_SRCS  := $(wildcard client/*.c)
DAEMON_SRCS  := $(wildcard daemon/*.c)
CUDA_SRCS    := $(wildcard kernels/cuda/*.cu)
EMU_SRCS     := $(wildcard kernels/emu/*.cc)
EMU_TEST_CU  := $(wildcard tests/emu/*.cu)

DAEMON_LIB_SRCS := $(filter-out daemon/main.c,$(DAEMON_SRCS))

LIB_DAEMON  := $(B)/lib/libgidaemon.a
LIB_IPC     := $(B)/lib/libgiipc.a
LIB_ENGINE  := $(B)/lib/libgiengine.a
LIB_KERNELS := $(B)/lib/libgikernels.a
LIB_CLIENT_A  := $(B)/lib/libgiclient.a
LIB_CLIENT_SO := $(B)/lib/libgiclient.so.$(SOVER)
LIB_CUDA      := $(B)/lib/libgicuda.a
LIB_CUDA_EMU  := $(B)/lib/libgicudaemu.a
INTERNAL_LIBS := $(LIB_ENGINE) $(LIB_KERNELS) $(LIB_IPC)

TOOL_DIRS  := $(patsubst tools/%/,%,$(sort $(dir $(wildcard tools/*/*.c))))
TOOL_FILES := $(patsubst tools/%.c,%,$(wildcard tools/*.c))
TOOLS      := $(TOOL_DIRS) $(TOOL_FILES)
BENCHES    := $(patsubst bench/%.c,bench-%,$(wildcard bench/*.c))
EXAMPLES   := $(patsubst examples/%.c,example-%,$(wildcard examples/*.c))
TEST_SRCS  := $(shell find tests -name 'test_*.c' 2>/dev/null | sort)
TESTS      := $(patsubst %.c,$(B)/tests/%,$(notdir $(TEST_SRCS)))
TSAN_TESTS := $(patsubst %.c,build/tsan/tests/%,$(notdir $(filter %_mt.c,$(TEST_SRCS))))
TEST_SUPPORT := $(filter-out $(TEST_SRCS),$(shell find tests -name '*.c' 2>/dev/null | sort))
FUZZ_SRCS  := $(wildcard fuzz/fuzz_*.c)
FUZZERS    := $(patsubst fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRCS))

PROGS := $(if $(wildcard daemon/main.c),$(B)/bin/gid) $(addprefix $(B)/bin/,$(TOOLS) $(BENCHES) $(EXAMPLES))

all: $(PROGS) $(if $(CLIENT_SRCS),$(LIB_CLIENT_SO) $(LIB_CLIENT_A) $(B)/lib/giclient.pc) $(TESTS) \
	$(if $(NVCC),$(if $(CUDA_SRCS),$(LIB_CUDA)))

# ---- configuration probe --------------------------------------------------
$(B)/config.h: scripts/probe.sh
	$(call say,PROBE,$@)mkdir -p $(@D) && CC="$(CC)" sh scripts/probe.sh > $@.tmp && mv $@.tmp $@

# ---- objects ----------------------------------------------------------------
$(B)/obj/%.o: %.c $(B)/config.h
	$(call say,CC,$<)mkdir -p $(@D) && $(CC) $(CPPFLAGS) $(ALLCFLAGS) $(call isa_of,$<) -c $< -o $@

# CUDA sources: by the host C++ compiler against the emulator (.cu and .cc
# alike), and by nvcc for the real library.
emu_obj = $(patsubst %,$(B)/obj/emu/%.o,$(basename $(1)))
$(B)/obj/emu/%.o: %.cu $(B)/config.h
	$(call say,CXX,$<)mkdir -p $(@D) && $(CXX) $(CPPFLAGS) $(ALLCXXFLAGS) -x c++ -c $< -o $@
$(B)/obj/emu/%.o: %.cc $(B)/config.h
	$(call say,CXX,$<)mkdir -p $(@D) && $(CXX) $(CPPFLAGS) $(ALLCXXFLAGS) -c $< -o $@
$(B)/obj/nvcc/%.o: %.cu $(B)/config.h
	$(call say,NVCC,$<)mkdir -p $(@D) && $(NVCC) -I. -I$(B) -std=c++17 $(NVCCFLAGS) \
		-Xcompiler -fPIC -MMD -MP -c $< -o $@

# ---- libraries --------------------------------------------------------------
$(LIB_DAEMON): $(call obj,$(DAEMON_LIB_SRCS))
$(LIB_IPC): $(call obj,$(IPC_SRCS))
$(LIB_ENGINE): $(call obj,$(ENGINE_SRCS))
$(LIB_KERNELS): $(call obj,$(KERNEL_SRCS))
$(LIB_CUDA): $(patsubst %.cu,$(B)/obj/nvcc/%.o,$(CUDA_SRCS))
$(LIB_CUDA_EMU): $(call emu_obj,$(CUDA_SRCS) $(EMU_SRCS))
$(LIB_CLIENT_A): $(call obj,$(CLIENT_SRCS) $(IPC_SRCS))
$(B)/lib/%.a:
	$(call say,AR,$@)mkdir -p $(@D) && rm -f $@ && ar rcs $@ $^

$(LIB_CLIENT_SO): $(call obj,$(CLIENT_SRCS) $(IPC_SRCS)) $(wildcard client/giclient.map)
	$(call say,LD,$@)mkdir -p $(@D) && $(CC) -shared -Wl,-soname,libgiclient.so.$(SOVER_MAJOR) \
		$(if $(wildcard client/giclient.map),-Wl$(comma)--version-script=client/giclient.map) \
		$(LDFLAGS_ALL) -o $@ $(call obj,$(CLIENT_SRCS) $(IPC_SRCS)) $(SYSLIBS) && \
		ln -sf libgiclient.so.$(SOVER) $(B)/lib/libgiclient.so.$(SOVER_MAJOR) && \
		ln -sf libgiclient.so.$(SOVER_MAJOR) $(B)/lib/libgiclient.so

$(B)/lib/giclient.pc: client/giclient.pc.in Makefile
	$(call say,GEN,$@)mkdir -p $(@D) && sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(SOVER)|' $< > $@

# ---- programs ---------------------------------------------------------------
CLIENT_OBJS = $(call obj,$(CLIENT_SRCS))
$(B)/bin/gid: $(call obj,$(filter daemon/main.c,$(DAEMON_SRCS))) $(LIB_DAEMON) $(INTERNAL_LIBS)
	$(call say,LINK,$@)mkdir -p $(@D) && $(CC) $(LDFLAGS_ALL) -o $@ $^ $(SYSLIBS)

define tool_rule
$(B)/bin/$(1): $(call obj,$(wildcard tools/$(1)/*.c) $(wildcard tools/$(1).c)) $(CLIENT_OBJS) $(INTERNAL_LIBS)
	$$(call say,LINK,$$@)mkdir -p $$(@D) && $$(CC) $$(LDFLAGS_ALL) -o $$@ $$^ $$(SYSLIBS)
endef
$(foreach t,$(TOOLS),$(eval $(call tool_rule,$(t))))

$(B)/bin/bench-%: $(B)/obj/bench/%.o $(CLIENT_OBJS) $(INTERNAL_LIBS)
	$(call say,LINK,$@)mkdir -p $(@D) && $(CC) $(LDFLAGS_ALL) -o $@ $^ $(SYSLIBS)

$(B)/bin/example-%: $(B)/obj/examples/%.o $(LIB_CLIENT_SO)
	$(call say,LINK,$@)mkdir -p $(@D) && $(CC) $(LDFLAGS_ALL) -o $@ $< -L$(B)/lib -lgiclient -Wl,-rpath,'$$ORIGIN/../lib'

# ---- tests ------------------------------------------------------------------
# TSan builds of *_mt tests hold only the ipc and client layers: the shared
# test helpers plus the support files beside the test.
tsan_support = tests/t_main.c tests/t_util.c $(filter $(dir $(1))%,$(TEST_SUPPORT))
# Tests under tests/emu/ also get the CUDA kernels on the emulator.
emu_test = $(if $(filter tests/emu/%,$(1)),$(call emu_obj,$(EMU_TEST_CU)) $(LIB_CUDA_EMU))
define test_rule
$(B)/tests/$(notdir $(basename $(1))): $(call obj,$(1) $(TEST_SUPPORT)) $(call emu_test,$(1)) $(CLIENT_OBJS) $(if $(DAEMON_LIB_SRCS),$(LIB_DAEMON)) $(INTERNAL_LIBS)
	$$(call say,LINK,$$@)mkdir -p $$(@D) && $$(CC) $$(LDFLAGS_ALL) -o $$@ $$^ $$(CHECKLIBS) $$(SYSLIBS) $(if $(call emu_test,$(1)),-lstdc++)
build/tsan/tests/$(notdir $(basename $(1))): $(1) $(call tsan_support,$(1)) $(CLIENT_SRCS) $(IPC_SRCS) $(B)/config.h
	$$(call say,TSAN,$$@)mkdir -p $$(@D) && $$(CC) $$(CPPFLAGS) -std=gnu11 -pthread -O1 -g -fsanitize=thread -DGI_TSAN=1 \
		-o $$@ $(1) $(call tsan_support,$(1)) $(CLIENT_SRCS) $(IPC_SRCS) $$(CHECKLIBS) $$(SYSLIBS)
endef
$(foreach t,$(TEST_SRCS),$(eval $(call test_rule,$(t))))

# ---- fuzzers (clang libFuzzer) --------------------------------------------
FUZZ_LIB_SRCS := $(IPC_SRCS) $(ENGINE_SRCS) $(filter-out %_avx2.c %_avx512.c %_amx.c,$(KERNEL_SRCS))
$(B)/fuzz/%: fuzz/%.c $(FUZZ_LIB_SRCS) $(B)/config.h
	$(call say,FUZZ,$@)mkdir -p $(@D) && $(CLANG) $(CPPFLAGS) -std=gnu11 -O1 -g -DGI_FUZZ=1 -DGI_NO_SIMD=1 \
		-fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_LIB_SRCS) $(SYSLIBS)

# Seeds that are model files are generated, never committed.
FUZZ_SEEDS := $(B)/fuzz/corpus/fuzz_gguf/.stamp
$(FUZZ_SEEDS): scripts/fuzz-seeds.sh $(B)/bin/gi-mkmodel
	$(call say,GEN,$(@D))mkdir -p $(@D) && sh scripts/fuzz-seeds.sh $(B)/bin/gi-mkmodel $(@D) > $(@D).log 2>&1 || \
		{ cat $(@D).log; exit 1; }; touch $@

# ---- phony targets ----------------------------------------------------------
RUN_ENV = GI_BUILD=$(abspath $(B)) GI_SHARED=$(SHARED) GI_FUZZ_SECONDS=$(FUZZ_SECONDS)

check: all $(FUZZERS) $(FUZZ_SEEDS) $(if $(SANITIZE),$(TSAN_TESTS))
	$(Q)$(RUN_ENV) GI_TSAN_TESTS="$(if $(SANITIZE),$(abspath $(TSAN_TESTS)))" \
		GI_FUZZERS="$(abspath $(FUZZERS))" sh tests/run.sh $(abspath $(TESTS))

bench: all
	$(Q)$(RUN_ENV) sh scripts/bench.sh

demo: all
	$(Q)$(RUN_ENV) sh scripts/demo.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(B)/bin/gid $(B)/bin/gi $(wildcard $(B)/bin/gi-infer $(B)/bin/gi-mkmodel) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 client/giclient.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(LIB_CLIENT_SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libgiclient.so.$(SOVER) $(DESTDIR)$(PREFIX)/lib/libgiclient.so.$(SOVER_MAJOR)
	ln -sf libgiclient.so.$(SOVER_MAJOR) $(DESTDIR)$(PREFIX)/lib/libgiclient.so
	install -m 644 $(LIB_CLIENT_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(B)/lib/giclient.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	$(if $(wildcard systemd/*),install -d $(DESTDIR)$(PREFIX)/lib/systemd/system && install -m 644 systemd/* $(DESTDIR)$(PREFIX)/lib/systemd/system/)

clean:
	rm -rf build

.PHONY: all check bench demo install clean
-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
