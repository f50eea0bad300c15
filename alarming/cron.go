package alarming

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// cron is a parsed five-field cron expression: the allowed minutes,
// hours, days of the month, months and days of the week.
type cron struct {
	min, hour, dom, month, dow uint64
	domStar, dowStar           bool
}

var cronFields = []struct{ lo, hi int }{{0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 7}}

// parseCron reads "minute hour day-of-month month day-of-week" with *,
// numbers, ranges a-b, lists and steps /n (Aodh's time constraints).
func parseCron(s string) (*cron, error) {
	if len(s) > 256 {
		return nil, errors.New("cron expression too long")
	}
	fs := strings.Fields(s)
	if len(fs) != 5 {
		return nil, errors.New("cron expression must have 5 fields")
	}
	var sets [5]uint64
	for i, f := range fs {
		set, err := cronField(f, cronFields[i].lo, cronFields[i].hi)
		if err != nil {
			return nil, err
		}
		sets[i] = set
	}
	c := &cron{min: sets[0], hour: sets[1], dom: sets[2], month: sets[3], dow: sets[4],
		domStar: strings.HasPrefix(fs[2], "*"), dowStar: strings.HasPrefix(fs[4], "*")}
	if c.dow&(1<<7) != 0 { // 7 is Sunday too
		c.dow |= 1
	}
	return c, nil
}

func cronField(f string, lo, hi int) (uint64, error) {
	var set uint64
	for part := range strings.SplitSeq(f, ",") {
		rng, stepS, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepS)
			if err != nil || n < 1 || n > hi {
				return 0, errors.New("bad cron step " + strconv.Quote(stepS))
			}
			step = n
		}
		a, b := lo, hi
		if rng != "*" {
			x, y, isRange := strings.Cut(rng, "-")
			var err error
			if a, err = strconv.Atoi(x); err != nil || a < lo || a > hi {
				return 0, errors.New("bad cron value " + strconv.Quote(rng))
			}
			b = a
			if isRange {
				if b, err = strconv.Atoi(y); err != nil || b < a || b > hi {
					return 0, errors.New("bad cron range " + strconv.Quote(rng))
				}
			} else if hasStep {
				b = hi
			}
		}
		for v := a; v <= b; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

// match reports whether the minute t starts an occurrence.
func (c *cron) match(t time.Time) bool {
	if c.min&(1<<t.Minute()) == 0 || c.hour&(1<<t.Hour()) == 0 || c.month&(1<<int(t.Month())) == 0 {
		return false
	}
	dom := c.dom&(1<<t.Day()) != 0
	dow := c.dow&(1<<int(t.Weekday())) != 0
	if c.domStar || c.dowStar { // cron: both restricted means either
		return dom && dow
	}
	return dom || dow
}

// within reports whether now falls in a window of duration that starts at
// one of c's minutes, in loc.
func (c *cron) within(now time.Time, duration time.Duration, loc *time.Location) bool {
	t := now.In(loc).Truncate(time.Minute)
	for back := time.Duration(0); back < duration; back += time.Minute {
		if c.match(t.Add(-back)) {
			return true
		}
	}
	return false
}

// active reports whether the alarm may be evaluated now: it has no time
// constraints, or now is within one of them.
func active(a *Alarm, now time.Time) bool {
	if len(a.TimeConstraints) == 0 {
		return true
	}
	for _, tc := range a.TimeConstraints {
		c, err := parseCron(tc.Start)
		if err != nil {
			continue
		}
		loc := time.UTC
		if tc.Timezone != "" {
			if l, err := time.LoadLocation(tc.Timezone); err == nil {
				loc = l
			}
		}
		if c.within(now, time.Duration(tc.Duration)*time.Second, loc) {
			return true
		}
	}
	return false
}
