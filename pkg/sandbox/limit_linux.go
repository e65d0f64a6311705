package sandbox

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
)

// limitMemory lets this process's address space grow by at most limit
// bytes from now (RLIMIT_AS at its present size plus limit: a Go process
// has already reserved about a GiB it never touches), and sets the Go
// memory limit below it so the collector works hard before an allocation
// fails. The runtime dies of an allocation over the limit with "out of
// memory" on stderr, which is how the parent tells a memory death.
func limitMemory(limit int64) error {
	if limit <= 0 {
		return nil
	}
	size, err := vmSize()
	if err != nil {
		return err
	}
	max := size + uint64(limit)
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: max, Max: max}); err != nil {
		return fmt.Errorf("setting the address-space limit to %d bytes: %w", max, err)
	}
	debug.SetMemoryLimit(limit / 4 * 3)
	return nil
}

// vmSize is the process's present address-space size.
func vmSize() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmSize:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmSize in /proc/self/status")
}
