//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// The control plane of `stepflow local` must die with it, however it
// ends: Ctrl-C, a closed terminal, a kill -9. envtest starts etcd and
// kube-apiserver in process groups of their own (so a terminal's signals
// do not reach them) but sets no parent-death signal, and it builds their
// exec.Cmd itself. So `stepflow local` points envtest at symlinks to its
// own binary named etcd and kube-apiserver (envtest's TEST_ASSET_*
// overrides); run under such a name, stepflow sets PR_SET_PDEATHSIG to
// SIGKILL and execs the real binary in place, which keeps that signal.
// The kernel sends it when the thread that forked the child ends, so
// runLocal starts the control plane from a goroutine locked to its thread.

// shimFile, next to the symlinks, says where the real binaries are and
// which process the children must die with.
const shimFile = "stepflow-local-shim.json"

type shimConfig struct {
	Assets string `json:"assets"`
	Parent int    `json:"parent"`
}

// controlPlaneNames are the binaries that run under the shim.
var controlPlaneNames = []string{"etcd", "kube-apiserver"}

// parentDeathShim writes the symlinks and the shim file into dir and
// returns the paths envtest should start instead of the binaries in assets.
func parentDeathShim(dir, assets string) (map[string]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("the control plane's parent-death shim: %w", err)
	}
	if assets, err = filepath.Abs(assets); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("the control plane's parent-death shim: %w", err)
	}
	b, err := json.Marshal(shimConfig{Assets: assets, Parent: os.Getpid()})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, shimFile), b, 0o644); err != nil {
		return nil, fmt.Errorf("the control plane's parent-death shim: %w", err)
	}
	paths := map[string]string{}
	for _, name := range controlPlaneNames {
		link := filepath.Join(dir, name)
		if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("the control plane's parent-death shim: %w", err)
		}
		if err := os.Symlink(self, link); err != nil {
			return nil, fmt.Errorf("the control plane's parent-death shim: %w", err)
		}
		if abs, err := filepath.Abs(link); err == nil {
			link = abs
		}
		paths[name] = link
	}
	return paths, nil
}

// execControlPlaneChild execs the real etcd or kube-apiserver with a
// parent-death signal when this binary was started as one of the shim's
// symlinks (argv[0] names one and a shim file sits beside it), and
// otherwise returns at once.
func execControlPlaneChild(args []string) {
	if len(args) == 0 {
		return
	}
	name := filepath.Base(args[0])
	if name != "etcd" && name != "kube-apiserver" {
		return
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(args[0]), shimFile))
	if err != nil {
		return
	}
	var cfg shimConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "stepflow local: %s: %v\n", shimFile, err)
		os.Exit(1)
	}
	// The signal and the exec must happen on one thread: the kernel keeps
	// the setting of the thread that execs.
	runtime.LockOSThread()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); errno != 0 {
		fmt.Fprintf(os.Stderr, "stepflow local: %s: setting the parent-death signal: %v\n", name, errno)
		os.Exit(1)
	}
	if os.Getppid() != cfg.Parent {
		os.Exit(1) // stepflow local is already gone
	}
	real := filepath.Join(cfg.Assets, name)
	err = syscall.Exec(real, append([]string{real}, args[1:]...), os.Environ())
	fmt.Fprintf(os.Stderr, "stepflow local: starting %s: %v\n", real, err)
	os.Exit(1)
}

// childProcess is a direct child of this process.
type childProcess struct {
	pid  int
	name string
}

// controlPlaneChildren lists this process's children that are etcd or
// kube-apiserver, from /proc.
func controlPlaneChildren() []childProcess {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []childProcess
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, comm, ok := procStat(pid)
		if !ok || ppid != self {
			continue
		}
		for _, name := range controlPlaneNames {
			// comm is at most 15 bytes: kube-apiserver fits.
			if comm == name {
				out = append(out, childProcess{pid: pid, name: name})
			}
		}
	}
	return out
}

// procStat reads the parent pid and command name of pid.
func procStat(pid int) (ppid int, comm string, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, "", false
	}
	s := string(b)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return 0, "", false
	}
	fields := strings.Fields(s[closing+1:]) // state ppid ...
	if len(fields) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(fields[1])
	return ppid, s[open+1 : closing], err == nil
}

// killGroups sends SIGKILL to the process group of each child that is
// still this process's child (envtest made each its group's leader), so
// nothing it started outlives `stepflow local`.
func killGroups(children []childProcess) {
	self := os.Getpid()
	for _, c := range children {
		if ppid, comm, ok := procStat(c.pid); ok && ppid == self && comm == c.name {
			_ = syscall.Kill(-c.pid, syscall.SIGKILL)
		}
	}
}
