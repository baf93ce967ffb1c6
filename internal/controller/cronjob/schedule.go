package cronjob

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed five-field cron expression.
type Schedule struct {
	minute, hour, dom, month, dow uint64 // bit i set: value i allowed
	domStar, dowStar              bool
}

type field struct {
	min, max int
	names    map[string]int
}

var (
	monthNames = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
	dowNames   = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
)

// macros are the @-shorthands upstream's cron library accepts.
func macro(s string) (string, bool) {
	switch s {
	case "@yearly", "@annually":
		return "0 0 1 1 *", true
	case "@monthly":
		return "0 0 1 * *", true
	case "@weekly":
		return "0 0 * * 0", true
	case "@daily", "@midnight":
		return "0 0 * * *", true
	case "@hourly":
		return "0 * * * *", true
	}
	return "", false
}

// Parse reads a standard five-field cron expression (minute hour
// day-of-month month day-of-week) with *, ?, ranges a-b, steps */n and
// a-b/n, lists, month and weekday names, 7 as Sunday, and the @yearly,
// @annually, @monthly, @weekly, @daily, @midnight and @hourly macros.
// TZ= and CRON_TZ= prefixes are refused: the time zone is spec.timeZone.
func Parse(spec string) (*Schedule, error) {
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, fmt.Errorf("unsupported schedule %q: use spec.timeZone instead of TZ or CRON_TZ", spec)
	}
	if strings.HasPrefix(spec, "@") {
		m, ok := macro(spec)
		if !ok {
			return nil, fmt.Errorf("unrecognized descriptor: %s", spec)
		}
		spec = m
	}
	parts := strings.Fields(spec)
	if len(parts) != 5 {
		return nil, fmt.Errorf("expected exactly 5 fields, found %d: %s", len(parts), spec)
	}
	s := &Schedule{}
	var err error
	fields := []struct {
		dst  *uint64
		star *bool
		f    field
	}{
		{&s.minute, nil, field{0, 59, nil}},
		{&s.hour, nil, field{0, 23, nil}},
		{&s.dom, &s.domStar, field{1, 31, nil}},
		{&s.month, nil, field{1, 12, monthNames}},
		{&s.dow, &s.dowStar, field{0, 7, dowNames}},
	}
	for i, f := range fields {
		var star bool
		if *f.dst, star, err = parseField(parts[i], f.f); err != nil {
			return nil, err
		}
		if f.star != nil {
			*f.star = star
		}
	}
	if s.dow&(1<<7) != 0 {
		s.dow |= 1 // 7 is Sunday too
	}
	return s, nil
}

func parseField(expr string, f field) (bits uint64, star bool, err error) {
	for _, item := range strings.Split(expr, ",") {
		b, st, err := parseItem(item, f)
		if err != nil {
			return 0, false, err
		}
		bits |= b
		star = star || st
	}
	return bits, star, nil
}

func parseItem(item string, f field) (uint64, bool, error) {
	rangePart, stepPart, hasStep := strings.Cut(item, "/")
	step := 1
	if hasStep {
		n, err := strconv.Atoi(stepPart)
		if err != nil || n <= 0 {
			return 0, false, fmt.Errorf("invalid step %q in %q", stepPart, item)
		}
		step = n
	}
	var lo, hi int
	star := false
	switch {
	case rangePart == "*" || rangePart == "?":
		lo, hi, star = f.min, f.max, step == 1
	default:
		a, b, isRange := strings.Cut(rangePart, "-")
		var err error
		if lo, err = value(a, f); err != nil {
			return 0, false, err
		}
		hi = lo
		if isRange {
			if hi, err = value(b, f); err != nil {
				return 0, false, err
			}
		} else if hasStep {
			hi = f.max // "5/15" means from 5 to the end, every 15
		}
	}
	if lo < f.min || hi > f.max || lo > hi {
		return 0, false, fmt.Errorf("value out of range in %q (%d-%d)", item, f.min, f.max)
	}
	var bits uint64
	for v := lo; v <= hi; v += step {
		bits |= 1 << uint(v)
	}
	return bits, star, nil
}

func value(s string, f field) (int, error) {
	if v, ok := f.names[strings.ToLower(s)]; ok {
		return v, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("invalid value %q", s)
	}
	return n, nil
}

func has(bits uint64, v int) bool { return bits&(1<<uint(v)) != 0 }

// dayMatches applies cron's rule: when both day fields are restricted, a
// day matching either is enough; otherwise both must match.
func (s *Schedule) dayMatches(t time.Time) bool {
	dom, dow := has(s.dom, t.Day()), has(s.dow, int(t.Weekday()))
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}

// Next is the first activation strictly after t, in t's location; the zero
// time if there is none within five years.
func (s *Schedule) Next(t time.Time) time.Time {
	loc := t.Location()
	t = t.Add(time.Minute - time.Duration(t.Second())*time.Second - time.Duration(t.Nanosecond()))
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		if !has(s.month, int(t.Month())) {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
			continue
		}
		if !s.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
			continue
		}
		if !has(s.hour, t.Hour()) {
			// Absolute time, so a daylight-saving jump neither loops nor skips.
			t = t.Add(time.Hour - time.Duration(t.Minute())*time.Minute)
			continue
		}
		if !has(s.minute, t.Minute()) {
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}

// MostRecent returns the latest activation in (earliest, now] and how many
// activations that interval holds, counting at most 101 (upstream's "too
// many missed start times" threshold is more than 100); the zero time when
// there is none.
func MostRecent(s *Schedule, earliest, now time.Time) (time.Time, int) {
	var last time.Time
	missed := 0
	var maxGap time.Duration
	for t := s.Next(earliest); !t.IsZero() && !t.After(now); t = s.Next(t) {
		if !last.IsZero() {
			maxGap = max(maxGap, t.Sub(last))
		}
		last = t
		missed++
		if missed > 100 {
			// Skip ahead rather than walk years of minutes: within the
			// largest gap seen before now lies the latest activation.
			for u := s.Next(now.Add(-maxGap - time.Minute)); !u.IsZero() && !u.After(now); u = s.Next(u) {
				last = u
			}
			return last, missed
		}
	}
	return last, missed
}
