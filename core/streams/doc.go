// Package streams is the agent's typed client for the runtime protocol's
// streaming calls: Exec, Attach, PortForward and ContainerLogs. Each is one
// call that opens the gRPC stream, sends the start message, pumps stdin or
// data and terminal resizes, and copies what the runtime answers to the
// caller's writers, so that the node API, lifecycle hooks, exec probes and
// termination messages share one implementation of the protocol.
//
// Errors the runtime answers keep their gRPC status (status.Code works on
// them) and read as the runtime's message alone. An output writer that
// fails ends the call with an error wrapping ErrOutputClosed.
package streams
