package main

import (
	"fmt"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0-100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%7.1f ms", float64(d.Microseconds())/1000) }

func (b *bench) reportStartup(floor, serial, burst []time.Duration) {
	fp50, fp99 := percentile(floor, 50), percentile(floor, 99)
	sp50, sp99 := percentile(serial, 50), percentile(serial, 99)
	bp50, bp99 := percentile(burst, 50), percentile(burst, 99)
	fmt.Printf("\npod start-up, %d pods, image present (bound → Running seen by a watch)\n", b.n)
	fmt.Printf("%-44s %10s %10s\n", "", "p50", "p99")
	fmt.Printf("%-44s %10s %10s\n", "floor: containerd create+task+start", ms(fp50), ms(fp99))
	fmt.Printf("%-44s %10s %10s\n", "fedlet: one pod at a time", ms(sp50), ms(sp99))
	fmt.Printf("%-44s %10s %10s\n", "fedlet: all at once (16 creates in flight)", ms(bp50), ms(bp99))
	fmt.Printf("ratio fedlet/floor, one at a time: p50 %.2f, p99 %.2f\n", float64(sp50)/float64(fp50), float64(sp99)/float64(fp99))
	aim := time.Duration(float64(fp50)*1.1) + 20*time.Millisecond
	verdict := "met"
	if sp50 > aim {
		verdict = "missed"
	}
	fmt.Printf("aim p50 ≤ 1.1 × floor + 20 ms = %s: %s (overhead %s)\n", ms(aim), verdict, ms(sp50-fp50))
}

func (b *bench) reportChurn(floor, host, pods churnRate) {
	fmt.Printf("\nchurn, %d cycles of create → Running → delete → gone, %d at a time\n", b.n, churnInFlight)
	fmt.Printf("floor: containerd create+start+stop+remove   %6.1f cycles/s; %s\n", floor.perSecond, floor.cpu)
	fmt.Printf("fedlet: host-network pods (the same steps)    %6.1f cycles/s (%.2f × the floor; aim 0.8); %s\n",
		host.perSecond, host.perSecond/floor.perSecond, host.cpu)
	fmt.Printf("fedlet: pods with CNI ADD and DEL             %6.1f cycles/s (%.2f × the floor); %s\n",
		pods.perSecond, pods.perSecond/floor.perSecond, pods.cpu)
}

func reportMemory(m memory) {
	perPod := float64(m.agentWith-m.agentBefore) / float64(m.pods) / 1024
	fmt.Printf("\nagent memory: %.1f MiB idle, %.1f MiB with %d host-network pods: %.1f KiB per pod (aim < 10)\n",
		mib(m.agentBefore), mib(m.agentWith), m.pods, perPod)
	fmt.Printf("agent live heap after a collection: %.1f MiB idle, %.1f MiB with %d pods: %.1f KiB per pod\n",
		mib(m.heapBefore), mib(m.heapWith), m.pods, float64(m.heapWith-m.heapBefore)/float64(m.pods)/1024)
	fmt.Printf("runtime plugin memory: %.1f MiB idle, %.1f MiB with %d pods\n", mib(m.pluginBefore), mib(m.pluginWith), m.pods)
}

func mib(bytes int64) float64 {
	return float64(bytes) / (1 << 20)
}

func (b *bench) reportCNI(floor, serial, cniFloor, cniPlugin []time.Duration) {
	fp50, fp99 := percentile(cniFloor, 50), percentile(cniFloor, 99)
	pp50, pp99 := percentile(cniPlugin, 50), percentile(cniPlugin, 99)
	fmt.Printf("\nCNI ADD of one pod, %d times (bridge, host-local, portmap; each deleted before the next)\n", b.n)
	fmt.Printf("%-44s %10s %10s\n", "", "p50", "p99")
	fmt.Printf("%-44s %10s %10s\n", "floor: libcni AddNetworkList", ms(fp50), ms(fp99))
	fmt.Printf("%-44s %10s %10s\n", "fedlet: network plugin Add", ms(pp50), ms(pp99))
	fmt.Printf("ratio plugin/libcni: p50 %.2f, p99 %.2f (overhead %s)\n", float64(pp50)/float64(fp50), float64(pp99)/float64(fp99), ms(pp50-fp50))
	// The pods above went through sandbox, CNI ADD and start: their floor
	// is containerd's start plus libcni's ADD, each measured in this run.
	netFloor := percentile(floor, 50) + fp50
	fmt.Printf("pod start-up with networking: fedlet p50 %s vs containerd start + libcni ADD p50 %s = %s (ratio %.2f)\n",
		ms(percentile(serial, 50)), ms(percentile(floor, 50)), ms(netFloor), float64(percentile(serial, 50))/float64(netFloor))
}
