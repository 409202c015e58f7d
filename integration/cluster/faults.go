package cluster

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// The faults below break a running cluster on purpose, for the tests of
// what fedlet survives. Each stopped part is started again in its place, so
// that Stop still stops everything in order.

// KillAgent kills the agent process with SIGKILL, as a crash would. Its
// containers keep running; its runtime plugin exits on its own.
func (c *Cluster) KillAgent() error {
	return kill(c.agent)
}

// StartAgent starts the agent again and waits until its node is Ready.
func (c *Cluster) StartAgent(ctx context.Context) error {
	old := c.agent
	if err := c.startAgent(ctx); err != nil {
		return err
	}
	c.sup.replace(old, c.agent)
	return nil
}

// StopContainerd stops containerd and removes nothing: the shims keep the
// containers running without it.
func (c *Cluster) StopContainerd() error {
	return c.containerd.stopLeader(stopTimeout)
}

// StartContainerd starts containerd again and waits until it serves.
func (c *Cluster) StartContainerd(ctx context.Context) error {
	old := c.containerd
	if err := c.startContainerd(ctx); err != nil {
		return err
	}
	c.sup.replace(old, c.containerd)
	return nil
}

// KillAPIServer kills kube-apiserver with SIGKILL (its graceful shutdown
// waits for watches to drain); the datastore keeps the cluster's state.
func (c *Cluster) KillAPIServer() error {
	return kill(c.apiServer)
}

// StartAPIServer starts kube-apiserver again and waits until it is ready.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	old := c.apiServer
	if err := c.startAPIServer(ctx, c.etcdURL); err != nil {
		return err
	}
	c.sup.replace(old, c.apiServer)
	return nil
}

func kill(ch *child) error {
	if ch == nil {
		return errors.New("not running")
	}
	ch.stopping.Store(true)
	if err := syscall.Kill(ch.pid(), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s: %w", ch.name, err)
	}
	<-ch.done
	return nil
}
