package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// The bench's connections name themselves (application_name), so that the CPU the database
// spends on them can be told apart: the application's load, the relay's pool, the harness's own
// reads (the history check, the counters).
const (
	appNameApplication = "bench-application"
	appNameRelay       = "walhook"
	appNameHarness     = "bench-harness"
)

// proc is one process's CPU time so far, in µs, and what it is (cpuCategory).
type proc struct {
	cat string
	us  float64
}

// clockTick is the unit of utime and stime in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const clockTick = 10_000.0 // µs

// procCPU returns a process's user plus system CPU time in µs (false: not readable, e.g. the
// server runs on another machine).
func procCPU(pid int) (float64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may hold spaces: the fields follow the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 { // state is field 3 of the file, utime 14, stime 15
		return 0, false
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return (ut + st) * clockTick, true
}

// cpuCategory names what a server process does for the bench: the walsender (logical decoding
// for the relay's slot), backends of the application's load, of the relay, of the harness, and
// the server's own background processes (checkpointer, WAL writer, autovacuum, …).
func cpuCategory(backendType, appName string) string {
	switch {
	case backendType == "walsender":
		return "walsender"
	case backendType != "client backend":
		return "background"
	case appName == appNameApplication:
		return "application"
	case appName == appNameHarness:
		return "harness"
	}
	return "walhook" // the relay's pool (appNameRelay) and capture's own connections
}

// readProcs reads the CPU time of the server's processes (pg_stat_activity) of the cluster of
// pool, keyed by pid, and of this process (the load, the receiver and the in-process relay) when
// self. Processes it cannot read (a server on another machine) are left out.
func readProcs(ctx context.Context, c *clusterStats, self bool) (map[int]proc, error) {
	rows, err := c.pool.Query(ctx, `SELECT pid, coalesce(backend_type, ''), coalesce(application_name, '') FROM pg_stat_activity`)
	if err != nil {
		return nil, fmt.Errorf("read server processes: %w", err)
	}
	defer rows.Close()
	out := map[int]proc{}
	for rows.Next() {
		var pid int
		var bt, app string
		if err := rows.Scan(&pid, &bt, &app); err != nil {
			return nil, fmt.Errorf("read server processes: %w", err)
		}
		if us, ok := procCPU(pid); ok {
			out[pid] = proc{cat: cpuCategory(bt, app), us: us}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read server processes: %w", err)
	}
	if self {
		if us, ok := procCPU(os.Getpid()); ok {
			out[os.Getpid()] = proc{cat: "bench-process", us: us}
		}
	}
	return out, nil
}

// cpuKey is a category's key in Result.CPU: "<cluster>:<category>", "bench-process" alone.
func cpuKey(cluster, cat string) string {
	if cat == "bench-process" {
		return cat
	}
	return cluster + ":" + cat
}

// cpuSince is the CPU time by category between two readings: a process in both counts its
// difference, one started since counts all of it (one that ended is lost: short-lived
// autovacuum workers, at most).
func cpuSince(end, start map[int]proc) map[string]float64 {
	out := map[string]float64{}
	for pid, p := range end {
		d := p.us
		if s, ok := start[pid]; ok && s.cat == p.cat {
			d -= s.us
		}
		out[p.cat] += d
	}
	return out
}
