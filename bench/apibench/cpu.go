package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc CPU times; 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// cpuSample is a moment's CPU accounting: the server's, this process's and
// the whole machine's. The machine is shared, so a phase's figures mean
// little without knowing who else used the cores meanwhile.
type cpuSample struct {
	at          time.Time
	server      time.Duration // utime+stime of the server process
	client      time.Duration // utime+stime of this benchmark
	busy, total time.Duration // all CPUs: non-idle and all time, from /proc/stat
}

// sampleCPU reads the counters; pid is the server's. Fields it cannot read
// stay zero, which the report shows as 0 rather than failing a measurement.
func sampleCPU(pid int) cpuSample {
	s := cpuSample{at: time.Now()}
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// The command name may contain spaces; fields start after ')'.
		if i := strings.LastIndexByte(string(data), ')'); i >= 0 {
			f := strings.Fields(string(data[i+1:]))
			if len(f) > 12 {
				u, _ := strconv.ParseInt(f[11], 10, 64)
				k, _ := strconv.ParseInt(f[12], 10, 64)
				s.server = ticks(u + k)
			}
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(data), "\n")
		f := strings.Fields(line)
		if len(f) > 5 && f[0] == "cpu" {
			var all, idle int64
			for j, v := range f[1:] {
				n, _ := strconv.ParseInt(v, 10, 64)
				if j >= 7 { // guest time is already counted in user
					break
				}
				all += n
				if j == 3 || j == 4 { // idle, iowait
					idle += n
				}
			}
			s.total, s.busy = ticks(all), ticks(all-idle)
		}
	}
	return s
}

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / clockTicks }

// cpuUse says, in cores, how busy the server, the benchmark and everything
// else on the machine were between two samples.
func cpuUse(a, b cpuSample) string {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return ""
	}
	server := (b.server - a.server).Seconds() / wall
	client := (b.client - a.client).Seconds() / wall
	busy := 0.0
	if b.total > a.total {
		busy = float64(b.busy-a.busy) / float64(b.total-a.total) * float64(runtime.NumCPU())
	}
	other := max(busy-server-client, 0)
	return fmt.Sprintf("CPU cores used: server %.2f, bench client %.2f, other processes %.2f", server, client, other)
}
