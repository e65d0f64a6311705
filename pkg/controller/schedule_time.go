package controller

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// maxMissed is how many missed schedule times a reconcile counts before it
// stops counting, reports them as too many (an event) and still starts the
// most recent one, as Kubernetes' CronJob controller does.
const maxMissed = 100

// parseSchedule reads a schedule's cron expression (five fields or a
// descriptor such as @hourly, robfig/cron's standard parser, the one
// Kubernetes' CronJob uses) and its time zone: spec.timeZone, else the
// controller's local zone. A TZ= or CRON_TZ= prefix in the expression is
// refused, as CronJob refuses it: the zone belongs in spec.timeZone.
func parseSchedule(spec v1alpha1.WorkflowScheduleSpec) (cron.Schedule, *time.Location, error) {
	expr := strings.TrimSpace(spec.Schedule)
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, nil, fmt.Errorf("schedule %q: set the time zone in spec.timeZone, not in the schedule", spec.Schedule)
	}
	loc := time.Local
	if spec.TimeZone != nil {
		var err error
		if loc, err = time.LoadLocation(*spec.TimeZone); err != nil {
			return nil, nil, fmt.Errorf("timeZone %q: not a known IANA time zone: %w", *spec.TimeZone, err)
		}
	}
	sched, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, nil, fmt.Errorf("schedule %q: %w", spec.Schedule, err)
	}
	return sched, loc, nil
}

// scheduleTimes is what a schedule owes at a moment: the most recent time
// it was due and has not run (zero: none), how many such times there were
// (counted up to maxMissed+1), and the next time it is due.
type scheduleTimes struct {
	Due    time.Time
	Missed int
	Next   time.Time
}

// dueTimes decides which scheduled time to run now, as Kubernetes' CronJob
// controller does. The window of times owed starts after earliest (the
// last scheduled time, else the schedule's creation) or, with a starting
// deadline, no earlier than now minus the deadline: a time missed by more
// than the deadline (the controller was down) is never run. Of the times
// in the window, only the most recent runs. Times are read in loc. A
// schedule that never fires again (cron gives no time within five years)
// has a zero Next.
func dueTimes(sched cron.Schedule, loc *time.Location, earliest, now time.Time, deadlineSeconds *int64) scheduleTimes {
	if deadlineSeconds != nil {
		if d := now.Add(-time.Duration(*deadlineSeconds) * time.Second); d.After(earliest) {
			earliest = d
		}
	}
	out := scheduleTimes{Next: sched.Next(now.In(loc))}
	t := sched.Next(earliest.In(loc))
	for !t.IsZero() && !t.After(now) {
		out.Due = t
		out.Missed++
		if out.Missed > maxMissed {
			break
		}
		t = sched.Next(t)
	}
	if out.Missed <= maxMissed {
		return out
	}
	// Too many to step through: look back from now over a window that
	// doubles until it holds a scheduled time, and take the last one in it.
	t = sched.Next(out.Due)
	if t.IsZero() || t.After(now) {
		return out
	}
	for w := t.Sub(out.Due); ; w *= 2 {
		start := now.Add(-w)
		if start.Before(out.Due) {
			start = out.Due
		}
		u := sched.Next(start.In(loc))
		if u.IsZero() || u.After(now) {
			continue
		}
		for !u.IsZero() && !u.After(now) {
			out.Due = u
			u = sched.Next(u)
		}
		return out
	}
}

// scheduledRunName is the name of the run a schedule creates for a
// scheduled time: the schedule's name and the time in minutes since the
// Unix epoch, as a CronJob names its Jobs. The same time always gives the
// same name, so a controller that crashed after creating the run finds it
// (AlreadyExists) instead of creating a second one; two times within one
// minute (@every 30s) share a run.
func scheduledRunName(schedule string, at time.Time) string {
	return fmt.Sprintf("%s-%d", schedule, at.Unix()/60)
}
