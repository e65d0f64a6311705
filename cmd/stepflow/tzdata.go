package main

// The image has no /usr/share/zoneinfo: a WorkflowSchedule's timeZone is
// read from the time zone database embedded in the binary (about 450 KB).
import _ "time/tzdata"
