package conformance

import (
	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// target is the plugin under test, in either of the kit's modes: a plugin
// binary the agent's plugin host runs (binary mode, Run and Test), or an
// implementation served over gRPC inside the kit's own process (in-process
// mode, RunServer and TestServer). The checks see only this.
type target interface {
	// client calls the instance now serving.
	client() runtimev1.RuntimeClient
	// describe is what the plugin said of itself when it was started.
	describe() *pluginv1.DescribeResponse
	// subscribe returns the plugin's events, starting with its current
	// state, and a function that ends the subscription.
	subscribe() (<-chan lifeEvent, func())
	// serving identifies the instance now serving (the plugin process's
	// pid, or the number of the in-process server), so that a check can
	// tell whether the one that answered it is still the one that serves.
	serving() (int, error)
	// live says whether an instance is serving now: a process whose death
	// the host has not noticed yet is not.
	live() bool
	// kill ends the instance now serving abruptly, as kill -9 does; the
	// target brings up a fresh one, as the plugin host does.
	kill(id int) error
	// state says why the plugin is up or down, for messages.
	state() (up bool, reason, message string)
	// stop stops the plugin for good and waits until it has.
	stop() error
}

// lifeEvent is a change of the plugin's state: an instance came up (after
// the first start or a restart) or none is serving.
type lifeEvent struct {
	up      bool
	reason  string
	message string
}

// kind names the event, for messages.
func (e lifeEvent) kind() string {
	if e.up {
		return "Started"
	}
	return "Down"
}
