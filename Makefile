# Stratus — the two commands of the README are `make run` and `make test`.

GO            ?= go
DATA          ?= $(if $(filter 0,$(shell id -u)),/var/lib/stratus,./stratus-data)
LISTEN        ?= 127.0.0.1
BIN           := $(CURDIR)/.cache/bin

# Pinned tools.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT         := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
# The real S3 server objectstore/s3obj's tests, benchmarks and
# scripts/e2e/objectstore-s3.sh start on loopback (posix backend).
VERSITYGW_VERSION     := v1.8.0
VERSITYGW             := $(BIN)/versitygw-$(VERSITYGW_VERSION)

# Debian packages each target needs (installed when root, named otherwise).
# Real servers: libvirt's daemon and QEMU (compute/libvirtvm), qemu-img for
# disks, genisoimage for config drives; dnsmasq for network/linuxnet's DHCP.
VM_DEPS   := libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils genisoimage
RUN_DEPS  := $(VM_DEPS) dnsmasq-base
# Building the tiny guest (scripts/guest/build.sh) needs these.
GUEST_DEPS := cpio e2fsprogs gzip
# compute/libvirtvm builds with cgo against libvirt-dev; network/linuxnet's
# tests use dnsmasq, ping and busybox's udhcpc/arping in test-made
# namespaces, nft and ip for the benchmarks' shell baselines.
TEST_DEPS  := util-linux python3-openstackclient python3-swiftclient python3-heatclient python3-gnocchiclient python3-aodhclient curl $(GUEST_DEPS) $(VM_DEPS) libvirt-dev \
	dnsmasq-base nftables iproute2 iputils-ping busybox-static

# Records the reload benchmark loads: make test runs benchmarks once on a
# smaller store; make bench measures the real 1,000,000.
TEST_RELOAD  ?= 100000
BENCH_RELOAD ?= 1000000
# Image size (MiB) of the image data benchmarks: make test uses their
# default (64 MiB); make bench measures 1 GiB uploads and downloads and the
# peak memory of a 1 GiB upload.
BENCH_IMAGE_MB ?= 1024
# Large-object size (MiB) of objectstore/s3obj's benchmarks: make test
# runs them on 8 MiB; make bench on the 64 MiB the target is set for.
BENCH_S3_MB ?= 64

# The end-to-end scripts make e2e runs (lib.sh is their shared part).
# network-linux.sh is what network.sh runs as root.
E2E ?= $(filter-out scripts/e2e/network-linux.sh scripts/e2e/lib.sh scripts/e2e/run.sh,$(wildcard scripts/e2e/*.sh))

# How long each fuzz target runs, and how many run at once (one fuzzing
# worker each); run longer with make fuzz FUZZTIME=60s.
FUZZTIME  ?= 15s
FUZZ_JOBS ?= 3
# How many end-to-end scripts run at once (those marked "# e2e: exclusive",
# which hold the host's dataplane or libvirt, run alone after the others).
E2E_JOBS  ?= 2

.PHONY: all run test unit benchcheck fuzz e2e guest guestcheck vmtest libvirtd lint bench versitygw deps-run deps-test deps-guest clean

all: test

## run: the all-in-one cloud from examples/allinone on embedded defaults.
run: deps-run guest libvirtd
	$(GO) build -o $(BIN)/allinone ./examples/allinone
	$(BIN)/allinone -data $(DATA) -listen $(LISTEN)

## test: the whole suite: vet, unit and integration tests with -race,
## then every benchmark once and the performance checks without -race.
## Each phase prints how long it took.
TEST_PHASES := unit benchcheck fuzz guestcheck vmtest e2e
test: deps-test
	@for p in $(TEST_PHASES); do \
		s=$$(date +%s); \
		$(MAKE) --no-print-directory $$p || { echo "== make $$p FAILED after $$(( $$(date +%s) - s )) s"; exit 1; }; \
		echo "== make $$p: $$(( $$(date +%s) - s )) s"; \
	done

unit: versitygw
	$(GO) vet ./...
	STRATUS_S3_SERVER=$(VERSITYGW) $(GO) test -race -count=1 ./...

benchcheck: versitygw
	STRATUS_S3_SERVER=$(VERSITYGW) STRATUS_BENCH_RELOAD=$(TEST_RELOAD) $(GO) test -p 1 -count=1 -run 'Speedup' -bench . -benchtime=1x ./...

## fuzz: every Fuzz target in the module, FUZZTIME each, FUZZ_JOBS at once.
fuzz:
	@scripts/fuzz.sh $(FUZZTIME) $(FUZZ_JOBS)

## e2e: the end-to-end scripts that drive real clients against the all-in-one.
e2e: versitygw
	@STRATUS_S3_SERVER=$(VERSITYGW) E2E_JOBS=$(E2E_JOBS) scripts/e2e/run.sh $(E2E)

## guest: the tiny Linux guest from Debian packages (kernel, initramfs, root
## disk) in $(GUEST); does nothing when it is up to date.
GUEST ?= $(CURDIR)/.cache/guest
guest: deps-guest
	@scripts/guest/build.sh $(GUEST)

## guestcheck: boot the tiny guest under QEMU and check its console markers.
guestcheck: guest
	@scripts/guest/check.sh $(GUEST)

## libvirtd: start virtlogd and libvirtd when they are not running (root).
libvirtd:
	@if [ "$$(id -u)" -eq 0 ]; then scripts/libvirtd.sh; else echo "libvirtd: not root, not starting libvirtd"; fi

## vmtest: the real-VM tests and benchmarks of compute/libvirtvm on
## qemu:///system, and the all-in-one's guests on the Linux dataplane (as
## root), one package at a time, without -race (they skip in unit).
vmtest: guest libvirtd
	STRATUS_VMTEST=1 $(GO) test -p 1 -count=1 -run 'VM' -bench 'VM' -benchtime=1x ./compute/libvirtvm/...
	STRATUS_VMTEST=1 $(GO) test -p 1 -count=1 -run 'VM' ./examples/allinone

## lint: go vet and the pinned golangci-lint.
lint: $(GOLANGCI_LINT)
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/golangci-lint $@

## versitygw: the pinned S3 server (Versity S3 Gateway) in .cache/bin.
versitygw: $(VERSITYGW)

$(VERSITYGW):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)
	mv $(BIN)/versitygw $@

## bench: measure for real (ratios against peers in the same run).
bench: versitygw
	STRATUS_S3_SERVER=$(VERSITYGW) STRATUS_S3_BENCH_MB=$(BENCH_S3_MB) STRATUS_BENCH_RELOAD=$(BENCH_RELOAD) STRATUS_BENCH_IMAGE_MB=$(BENCH_IMAGE_MB) $(GO) test -count=1 -run '^$$' -bench . -benchmem ./...

deps-run:
	@scripts/deps.sh $(RUN_DEPS)

deps-guest:
	@scripts/deps.sh $(GUEST_DEPS)

deps-test:
	@scripts/deps.sh $(TEST_DEPS)

clean:
	rm -rf .cache stratus-data
