package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

func TestParseSchedule(t *testing.T) {
	zone := func(z string) *string { return &z }
	for _, tc := range []struct {
		name, schedule string
		zone           *string
		wantErr        string
	}{
		{name: "five fields", schedule: "*/5 * * * *"},
		{name: "descriptor", schedule: "@hourly"},
		{name: "zone", schedule: "0 9 * * 1-5", zone: zone("Asia/Tokyo")},
		{name: "bad expression", schedule: "61 * * * *", wantErr: `schedule "61 * * * *": `},
		{name: "six fields", schedule: "0 0 9 * * *", wantErr: `schedule "0 0 9 * * *": `},
		{name: "unknown zone", schedule: "@daily", zone: zone("Mars/Olympus"), wantErr: `timeZone "Mars/Olympus": not a known IANA time zone`},
		{name: "zone in the expression", schedule: "CRON_TZ=Asia/Tokyo 0 9 * * *", wantErr: "set the time zone in spec.timeZone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, loc, err := parseSchedule(v1alpha1.WorkflowScheduleSpec{Schedule: tc.schedule, TimeZone: tc.zone})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.zone != nil && loc.String() != *tc.zone {
					t.Errorf("location %s, want %s", loc, *tc.zone)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// dueTimes follows Kubernetes' CronJob: the most recent time owed runs,
// once; a starting deadline narrows what is owed to the times within it;
// more than 100 missed times are reported but still start the last one.
func TestDueTimes(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	secs := func(s int64) *int64 { return &s }
	for _, tc := range []struct {
		name, schedule, zone string
		earliest, now        string
		deadline             *int64
		due                  string // "" none
		missed               int
		next                 string
	}{
		{name: "on time", schedule: "* * * * *", earliest: "2030-01-01T12:00:30Z", now: "2030-01-01T12:01:00Z",
			due: "2030-01-01T12:01:00Z", missed: 1, next: "2030-01-01T12:02:00Z"},
		{name: "a second early", schedule: "* * * * *", earliest: "2030-01-01T12:00:30Z", now: "2030-01-01T12:00:59Z",
			next: "2030-01-01T12:01:00Z"},
		{name: "the last scheduled time is not owed again", schedule: "* * * * *", earliest: "2030-01-01T12:01:00Z", now: "2030-01-01T12:01:30Z",
			next: "2030-01-01T12:02:00Z"},
		{name: "in the time zone", schedule: "0 9 * * *", zone: "Asia/Tokyo", earliest: "2030-01-01T00:00:00Z", now: "2030-01-02T00:00:05Z",
			due: "2030-01-02T00:00:00Z", missed: 1, next: "2030-01-03T00:00:00Z"},
		{name: "several missed, no deadline: the most recent", schedule: "*/10 * * * *", earliest: "2030-01-01T12:00:00Z", now: "2030-01-01T12:55:00Z",
			due: "2030-01-01T12:50:00Z", missed: 5, next: "2030-01-01T13:00:00Z"},
		{name: "several missed, the most recent within the deadline", schedule: "*/10 * * * *", earliest: "2030-01-01T12:00:00Z", now: "2030-01-01T12:53:00Z",
			deadline: secs(300), due: "2030-01-01T12:50:00Z", missed: 1, next: "2030-01-01T13:00:00Z"},
		{name: "several missed, all outside the deadline", schedule: "*/10 * * * *", earliest: "2030-01-01T12:00:00Z", now: "2030-01-01T12:58:00Z",
			deadline: secs(60), next: "2030-01-01T13:00:00Z"},
		{name: "a deadline before the last schedule changes nothing", schedule: "*/10 * * * *", earliest: "2030-01-01T12:40:00Z", now: "2030-01-01T12:50:10Z",
			deadline: secs(3600), due: "2030-01-01T12:50:00Z", missed: 1, next: "2030-01-01T13:00:00Z"},
		{name: "too many missed: counted to 101, the most recent", schedule: "* * * * *", earliest: "2030-01-01T00:00:00Z", now: "2030-01-03T10:30:30Z",
			due: "2030-01-03T10:30:00Z", missed: maxMissed + 1, next: "2030-01-03T10:31:00Z"},
		{name: "too many missed of an irregular schedule", schedule: "*/5 9 * * 1-5", earliest: "2030-01-01T00:00:00Z", now: "2030-01-19T12:00:00Z",
			due: "2030-01-18T09:55:00Z", missed: maxMissed + 1, next: "2030-01-21T09:00:00Z"},
		{name: "never again", schedule: "0 0 30 2 *", earliest: "2030-01-01T00:00:00Z", now: "2030-01-01T00:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := v1alpha1.WorkflowScheduleSpec{Schedule: tc.schedule, TimeZone: &tc.zone}
			if tc.zone == "" {
				spec.TimeZone = nil
			}
			sched, loc, err := parseSchedule(spec)
			if err != nil {
				t.Fatal(err)
			}
			if spec.TimeZone == nil {
				loc = time.UTC
			}
			got := dueTimes(sched, loc, utc(tc.earliest), utc(tc.now), tc.deadline)
			var due, next time.Time
			if tc.due != "" {
				due = utc(tc.due)
			}
			if tc.next != "" {
				next = utc(tc.next)
			}
			if !got.Due.Equal(due) || got.Missed != tc.missed || !got.Next.Equal(next) {
				t.Errorf("dueTimes = due %s, missed %d, next %s; want due %s, missed %d, next %s",
					got.Due.UTC(), got.Missed, got.Next.UTC(), due, tc.missed, next)
			}
		})
	}
}

func TestScheduledRunName(t *testing.T) {
	at := time.Date(2030, 1, 1, 12, 1, 0, 0, time.UTC)
	if got, want := scheduledRunName("nightly", at), "nightly-31558321"; got != want {
		t.Errorf("name %s, want %s", got, want)
	}
	if scheduledRunName("nightly", at.Add(59*time.Second)) != scheduledRunName("nightly", at) {
		t.Error("two times in one minute have different names")
	}
}
