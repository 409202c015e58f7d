# Everything builds into bin/. The upstream control plane is built from its
# own Go module (integration/controlplane) and only rebuilt when that module
# changes.
BIN        := $(CURDIR)/bin
GO         ?= go
K8S_VER    := v1.37.1
CONTAINERD := v2.4.2
KINE       := v0.17.5
REGISTRY   := v3.1.2
COREDNS    := v1.15.0
K8S_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(K8S_VER) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=37 \
	-X k8s.io/component-base/version.gitTreeState=clean \
	-X k8s.io/client-go/pkg/version.gitVersion=$(K8S_VER)
CONTROLPLANE := kube-apiserver kube-scheduler kube-controller-manager kubectl kube-proxy

.PHONY: all deps build components controlplane etcd proto test unit-test e2e-test bench up clean
all: build components

# Debian packages: runc, busybox-static, iproute2, iptables, conntrack.
deps:
	./integration/install-deps.sh

# csi-sanity, the CSI project's conformance suite, at the version go.mod
# pins: `fedlet plugin conform --csi` runs it.
build:
	$(GO) build -o $(BIN)/ ./cmd/... github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity

# Unit tests, then the end-to-end tests against the real stack (one package
# at a time: each starts its own cluster on the same ports). First, at once,
# what the machine lacks to run them all (root, runc, ip, ...): a test that
# lacks something fails, unless FEDLET_TEST_SKIP_MISSING=1 (README, Tests).
test:
	./integration/check-test-env.sh --before-deps
	$(MAKE) deps build components etcd
	$(MAKE) unit-test e2e-test

unit-test:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /integration/)

e2e-test:
	$(GO) test -count=1 -p 1 -timeout 60m ./integration/...

# Pod start-up against containerd's own floor, then one runtime call through
# the plugin host against the same call in-process.
bench: deps build components
	$(GO) run ./integration/bench
	$(GO) run ./integration/bench -federation -pods 100
	$(GO) test -run '^$$' -bench BenchmarkRuntimeCall -benchtime 2000x ./plugins/pluginhost

# Binaries the local cluster and the integration tests run.
components: controlplane $(BIN)/kine $(BIN)/containerd $(BIN)/registry $(BIN)/coredns cni-plugins

# One go build makes them all (a grouped target), so a binary that is missing
# or older than the module is rebuilt. touch: go build leaves an up-to-date
# binary untouched, which would make make run it again every time.
CONTROLPLANE_BINS := $(addprefix $(BIN)/,$(CONTROLPLANE))
controlplane: $(CONTROLPLANE_BINS)
$(CONTROLPLANE_BINS) &: integration/controlplane/go.mod integration/controlplane/go.sum
	cd integration/controlplane && $(GO) build -ldflags '$(K8S_LDFLAGS)' -o $(BIN)/ \
		$(addprefix k8s.io/kubernetes/cmd/,$(CONTROLPLANE))
	touch $(CONTROLPLANE_BINS)

$(BIN)/kine:
	CGO_ENABLED=0 GOBIN=$(BIN) $(GO) install github.com/k3s-io/kine@$(KINE)

$(BIN)/containerd $(BIN)/containerd-shim-runc-v2 $(BIN)/ctr &:
	GOBIN=$(BIN) $(GO) install \
		github.com/containerd/containerd/v2/cmd/containerd@$(CONTAINERD) \
		github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$(CONTAINERD) \
		github.com/containerd/containerd/v2/cmd/ctr@$(CONTAINERD)

$(BIN)/registry:
	GOBIN=$(BIN) $(GO) install github.com/distribution/distribution/v3/cmd/registry@$(REGISTRY)

# CoreDNS, the cluster's DNS: its module has no replace directives, so go
# install builds it as released.
$(BIN)/coredns:
	GOBIN=$(BIN) $(GO) install github.com/coredns/coredns@$(COREDNS)

# The standard CNI plugins the network plugin (fedlet-network-cni) runs, from
# the CNI project's own module, into bin/cni where the plugin looks by
# default. One go install makes them all; they are built only when missing.
CNI_PLUGINS_VER := v1.9.1
CNI_PLUGINS     := main/bridge ipam/host-local main/loopback meta/portmap
CNI_PLUGIN_BINS := $(addprefix $(BIN)/cni/,$(notdir $(CNI_PLUGINS)))
.PHONY: cni-plugins
cni-plugins: $(CNI_PLUGIN_BINS)
$(CNI_PLUGIN_BINS) &:
	GOBIN=$(BIN)/cni $(GO) install \
		$(foreach p,$(CNI_PLUGINS),github.com/containernetworking/plugins/plugins/$(p)@$(CNI_PLUGINS_VER))

# etcd, for `fedlet up --datastore etcd`: its own module (integration/etcd),
# since etcd's go.mod cannot be installed with go install.
etcd: $(BIN)/etcd
$(BIN)/etcd: integration/etcd/go.mod integration/etcd/go.sum integration/etcd/main.go
	cd integration/etcd && $(GO) build -o $@ .

# Brings up the local cluster; `fedlet up` builds what is missing itself.
up: deps build
	$(BIN)/fedlet up $(UP_FLAGS)

# Regenerates the protocol code committed under plugins/proto, with
# Debian's protoc (3.21.12, the version the committed code names).
proto:
	command -v protoc >/dev/null || apt-get install -y protobuf-compiler
	GOBIN=$(BIN)/tools $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	GOBIN=$(BIN)/tools $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
	PATH=$(BIN)/tools:$$PATH protoc --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative plugins/proto/*/v1/*.proto

clean:
	rm -rf $(BIN)
