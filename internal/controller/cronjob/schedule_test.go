package cronjob

import (
	"testing"
	"time"
)

func TestScheduleNext(t *testing.T) {
	utc := func(s string) time.Time {
		tt, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			panic(err)
		}
		return tt
	}
	tests := []struct {
		spec, from, want string
	}{
		{"*/1 * * * *", "2024-01-01 10:00", "2024-01-01 10:01"},
		{"* * * * *", "2024-01-01 10:59", "2024-01-01 11:00"},
		{"*/15 * * * *", "2024-01-01 10:16", "2024-01-01 10:30"},
		{"5/15 * * * *", "2024-01-01 10:21", "2024-01-01 10:35"},
		{"0 9-17/4 * * *", "2024-01-01 10:00", "2024-01-01 13:00"},
		{"30 2 * * mon-fri", "2024-01-05 03:00", "2024-01-08 02:30"}, // Friday -> Monday
		{"0 0 * * 7", "2024-01-01 00:00", "2024-01-07 00:00"},        // 7 is Sunday
		{"0 0 1,15 * *", "2024-01-02 00:00", "2024-01-15 00:00"},
		{"0 0 13 * fri", "2024-01-01 00:00", "2024-01-05 00:00"}, // dom OR dow
		{"0 0 1 jan *", "2024-03-01 00:00", "2025-01-01 00:00"},
		{"0 0 29 feb *", "2024-03-01 00:00", "2028-02-29 00:00"},
		{"@hourly", "2024-01-01 10:30", "2024-01-01 11:00"},
		{"@daily", "2024-01-01 10:30", "2024-01-02 00:00"},
		{"@midnight", "2024-01-01 10:30", "2024-01-02 00:00"},
		{"@weekly", "2024-01-01 10:30", "2024-01-07 00:00"},
		{"@monthly", "2024-01-01 10:30", "2024-02-01 00:00"},
		{"@yearly", "2024-01-01 10:30", "2025-01-01 00:00"},
		{"@annually", "2024-01-01 10:30", "2025-01-01 00:00"},
		{"0 0 31 2 *", "2024-01-01 00:00", ""},
	}
	for _, tc := range tests {
		s, err := Parse(tc.spec)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.spec, err)
			continue
		}
		got := s.Next(utc(tc.from))
		want := time.Time{}
		if tc.want != "" {
			want = utc(tc.want)
		}
		if !got.Equal(want) {
			t.Errorf("%q from %s: got %v, want %v", tc.spec, tc.from, got, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, spec := range []string{"", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "*/0 * * * *", "@every 5m", "CRON_TZ=UTC * * * * *", "TZ=UTC * * * * *", "5-1 * * * *", "x * * * *"} {
		if _, err := Parse(spec); err == nil {
			t.Errorf("Parse(%q): got no error, want one", spec)
		}
	}
}

func TestNextInTimeZone(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata")
	}
	s, _ := Parse("0 9 * * *")
	got := s.Next(time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC).In(ny))
	if want := time.Date(2024, 1, 1, 14, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// Spring forward: 02:30 does not exist on 2024-03-10; the next run is the day after.
	s, _ = Parse("30 2 * * *")
	got = s.Next(time.Date(2024, 3, 10, 0, 0, 0, 0, ny))
	if got.Day() == 10 && got.Hour() != 3 {
		t.Errorf("got %v across the DST gap", got)
	}
}

func TestMostRecent(t *testing.T) {
	s, _ := Parse("* * * * *")
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		earliest   time.Time
		now        time.Time
		wantRecent time.Time
		wantMissed int
	}{
		{"none yet", t0, t0.Add(30 * time.Second), time.Time{}, 0},
		{"one", t0, t0.Add(90 * time.Second), t0.Add(time.Minute), 1},
		{"three", t0, t0.Add(3*time.Minute + time.Second), t0.Add(3 * time.Minute), 3},
		{"too many", t0, t0.Add(200 * time.Minute), t0.Add(200 * time.Minute), 101},
	}
	for _, tc := range tests {
		got, missed := MostRecent(s, tc.earliest, tc.now)
		if !got.Equal(tc.wantRecent) || missed != tc.wantMissed {
			t.Errorf("%s: got %v, %d, want %v, %d", tc.name, got, missed, tc.wantRecent, tc.wantMissed)
		}
	}
}
