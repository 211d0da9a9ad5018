package loadgen // import "github.com/nerc-project/ai-telemetry-collector/internal/loadgen"

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of CPU times in /proc: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

var errProcFormat = errors.New("unexpected /proc format")

// PeakRSS is a process's peak resident set size (VmHWM in /proc/<pid>/status).
func PeakRSS(pid int) (int64, error) {
	return statusKiB(pid, "VmHWM:")
}

func statusKiB(pid int, field string) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == field && f[2] == "kB" {
			kib, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%w: %s %q", errProcFormat, field, f[1])
			}
			return kib * 1024, nil
		}
	}
	return 0, fmt.Errorf("%w: no %s in /proc/%d/status", errProcFormat, field, pid)
}

// CPUTime is the user plus system CPU time a process has used.
func CPUTime(pid int) (time.Duration, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return ticks(f[11]) + ticks(f[12]), nil
}

// GroupCPUTime is the CPU time of every live process in process group pgid
// (Keycloak: kc.sh and the JVM it starts).
func GroupCPUTime(pgid int) (time.Duration, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		f, err := procStat(pid)
		if err != nil || f[2] != strconv.Itoa(pgid) {
			continue // gone meanwhile, or another group
		}
		total += ticks(f[11]) + ticks(f[12])
	}
	return total, nil
}

// procStat returns the fields of /proc/<pid>/stat after the command name
// (field 3, the state, is index 0).
func procStat(pid int) ([]string, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	// The name is in parentheses and may itself hold spaces or parentheses.
	open, end := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
	if open < 0 || end < open {
		return nil, fmt.Errorf("%w: /proc/%d/stat", errProcFormat, pid)
	}
	f := strings.Fields(string(raw[end+1:]))
	if len(f) < 13 {
		return nil, fmt.Errorf("%w: /proc/%d/stat has %d fields", errProcFormat, pid, len(f))
	}
	return f, nil
}

func ticks(s string) time.Duration {
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.Duration(n) * time.Second / clockTicks
}

// MachineCPU is the busy and total CPU time of the whole machine since boot
// (/proc/stat), to tell how much other processes used during a run.
func MachineCPU() (busy, total time.Duration, err error) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := bytes.Cut(raw, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("%w: /proc/stat", errProcFormat)
	}
	for i, v := range f[1:9] { // user to steal; guest time is already in user
		d := ticks(v)
		total += d
		if i != 3 && i != 4 { // idle, iowait
			busy += d
		}
	}
	return busy, total, nil
}
