# Build, demo and test entry points. `make demo` and `make test` install what they need.
.PHONY: all deps build bpf weavewait lint demo test test-unit test-netns test-vm test-docker clean

NODE ?= node
BPF_SRC := $(wildcard dataplane/bpf/*.bpf.c)
BPF_OBJ := $(patsubst dataplane/bpf/%.bpf.c,dist/bpf/%.bpf.o,$(BPF_SRC))
BPF_CFLAGS := -O2 -g -target bpf -D__TARGET_ARCH_x86 -Wall -Werror -I dataplane/bpf/include
# The Docker API proxy's waiter, static so it runs in images without a shell or libc:
# w = ethwe up + multicast route, w-nomcast = ethwe up, w-noop = no wait (WAIT_MODE 2/1/0).
WEAVEWAIT_SRC := dataplane/weavewait/weavewait.c
WEAVEWAIT := dist/weavewait/w/w dist/weavewait/w-nomcast/w dist/weavewait/w-noop/w

all: build

deps:
	@scripts/install-deps.sh

build: deps
	npx tsc -p tsconfig.json
	$(NODE) scripts/bundle-router.mjs
	@$(MAKE) --no-print-directory bpf weavewait

bpf: $(BPF_OBJ)

weavewait: $(WEAVEWAIT)

dist/weavewait/w/w: WAIT_MODE := 2
dist/weavewait/w-nomcast/w: WAIT_MODE := 1
dist/weavewait/w-noop/w: WAIT_MODE := 0
dist/weavewait/%/w: $(WEAVEWAIT_SRC)
	@mkdir -p $(dir $@)
	gcc -static -Os -Wall -Werror -DWAIT_MODE=$(WAIT_MODE) -o $@ $<

dist/bpf/%.bpf.o: dataplane/bpf/%.bpf.c $(wildcard dataplane/bpf/include/*.h)
	@mkdir -p dist/bpf
	clang $(BPF_CFLAGS) -c $< -o $@

lint: build
	npx eslint .

demo: build
	$(NODE) dist/test/netns/demo.js

test: lint
	$(NODE) dist/test/run.js

test-unit: build
	$(NODE) dist/test/run.js unit
test-netns: build
	$(NODE) dist/test/run.js netns
test-vm: build
	$(NODE) dist/test/run.js vm
test-docker: build
	$(NODE) dist/test/run.js docker cni

clean:
	rm -rf dist
