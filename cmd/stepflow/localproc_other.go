//go:build !linux

package main

// Only Linux has a parent-death signal: elsewhere `stepflow local` stops
// its control plane on SIGINT, SIGTERM and SIGHUP, not on a kill -9.

func parentDeathShim(dir, assets string) (map[string]string, error) { return nil, nil }

func execControlPlaneChild([]string) {}

type childProcess struct {
	pid  int
	name string
}

func controlPlaneChildren() []childProcess { return nil }

func killGroups([]childProcess) {}
