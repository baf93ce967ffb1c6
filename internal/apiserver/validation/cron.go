package validation

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// cronField is one position of a standard cron expression.
type cronField struct {
	min, max uint
	names    map[string]uint
}

// cronFields returns minute, hour, day of month, month, day of week.
func cronFields() []cronField {
	return []cronField{
		{min: 0, max: 59},
		{min: 0, max: 23},
		{min: 1, max: 31},
		{min: 1, max: 12, names: map[string]uint{
			"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
			"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
		}},
		{min: 0, max: 6, names: map[string]uint{
			"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
		}},
	}
}

// parseCronSchedule accepts what upstream's parser (robfig/cron's
// ParseStandard) accepts: five fields, or a descriptor such as @daily or
// "@every 1h", optionally prefixed by TZ=/CRON_TZ=. Its error texts follow
// that parser's, since they end up in the API error message.
func parseCronSchedule(spec string) error {
	if spec == "" {
		return fmt.Errorf("empty spec string")
	}
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		i := strings.Index(spec, " ")
		eq := strings.Index(spec, "=")
		if i < 0 {
			return fmt.Errorf("provided bad location %s: missing schedule after time zone", spec[eq+1:])
		}
		// The zone is checked for shape only; loading it would be I/O.
		if tz := spec[eq+1 : i]; tz == "" || strings.ContainsAny(tz, " \t") {
			return fmt.Errorf("provided bad location %s: unknown time zone %s", tz, tz)
		}
		spec = strings.TrimSpace(spec[i:])
	}
	if strings.HasPrefix(spec, "@") {
		return parseCronDescriptor(spec)
	}
	fields := strings.Fields(spec)
	if len(fields) != 5 {
		return fmt.Errorf("expected exactly 5 fields, found %d: %s", len(fields), fields)
	}
	for i, f := range cronFields() {
		for _, expr := range strings.FieldsFunc(fields[i], func(r rune) bool { return r == ',' }) {
			if err := parseCronRange(expr, f); err != nil {
				return err
			}
		}
	}
	return nil
}

func parseCronDescriptor(d string) error {
	switch d {
	case "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly":
		return nil
	}
	const every = "@every "
	if strings.HasPrefix(d, every) {
		if _, err := time.ParseDuration(d[len(every):]); err != nil {
			return fmt.Errorf("failed to parse duration %s: %s", d, err)
		}
		return nil
	}
	return fmt.Errorf("unrecognized descriptor: %s", d)
}

// parseCronRange checks one "a", "a-b", "*", "*/n" or "a-b/n" term.
func parseCronRange(expr string, f cronField) error {
	rangeAndStep := strings.Split(expr, "/")
	lowAndHigh := strings.Split(rangeAndStep[0], "-")
	singleDigit := len(lowAndHigh) == 1
	var start, end uint
	var err error
	if lowAndHigh[0] == "*" || lowAndHigh[0] == "?" {
		start, end = f.min, f.max
	} else {
		if start, err = parseCronIntOrName(lowAndHigh[0], f.names); err != nil {
			return err
		}
		switch len(lowAndHigh) {
		case 1:
			end = start
		case 2:
			if end, err = parseCronIntOrName(lowAndHigh[1], f.names); err != nil {
				return err
			}
		default:
			return fmt.Errorf("too many hyphens: %s", expr)
		}
	}
	var step uint
	switch len(rangeAndStep) {
	case 1:
		step = 1
	case 2:
		if step, err = parseCronInt(rangeAndStep[1]); err != nil {
			return err
		}
		if singleDigit {
			end = f.max
		}
	default:
		return fmt.Errorf("too many slashes: %s", expr)
	}
	switch {
	case start < f.min:
		return fmt.Errorf("beginning of range (%d) below minimum (%d): %s", start, f.min, expr)
	case end > f.max:
		return fmt.Errorf("end of range (%d) above maximum (%d): %s", end, f.max, expr)
	case start > end:
		return fmt.Errorf("beginning of range (%d) beyond end of range (%d): %s", start, end, expr)
	case step == 0:
		return fmt.Errorf("step of range should be a positive number: %s", expr)
	}
	return nil
}

func parseCronIntOrName(expr string, names map[string]uint) (uint, error) {
	if n, ok := names[strings.ToLower(expr)]; ok {
		return n, nil
	}
	return parseCronInt(expr)
}

func parseCronInt(expr string) (uint, error) {
	n, err := strconv.Atoi(expr)
	if err != nil {
		return 0, fmt.Errorf("failed to parse int from %s: %s", expr, err)
	}
	if n < 0 {
		return 0, fmt.Errorf("negative number (%d) not allowed: %s", n, expr)
	}
	return uint(n), nil
}
