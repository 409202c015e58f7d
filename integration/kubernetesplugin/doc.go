// Package kubernetesplugin tests the kubernetes runtime plugin
// (plugins/runtime/kubernetes) end to end: the plugin binary, launched by the
// agent's plugin host, serving virtual nodes of a real member cluster that
// integration/cluster starts, and the conformance kit's whole-pod suite
// against it. The tests live here, not beside the backend, because a
// backend's package never imports the end-to-end machinery.
package kubernetesplugin
