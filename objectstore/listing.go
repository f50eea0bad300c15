package objectstore

import "strings"

// NameCursor walks a container's object names in byte order. Backends that
// keep names in an ordered index implement it over their index, and use
// Scan for Swift's listing rules.
type NameCursor interface {
	// Seek moves to the first name at or after name.
	Seek(name string) (string, bool)
	// SeekBefore moves to the last name before name; an empty name means
	// the last name of all.
	SeekBefore(name string) (string, bool)
	// Next and Prev move by one name.
	Next() (string, bool)
	Prev() (string, bool)
}

// afterAll is a byte that sorts after every byte of valid UTF-8, so that
// p+afterAll is past every name that begins with p.
const afterAll = "\xff"

// Scan applies opts to the names c walks and calls emit for each entry in
// listing order, with subdir set for a rolled-up prefix, until emit
// returns false or opts.Limit entries were emitted.
func Scan(c NameCursor, opts ListOptions, emit func(name string, subdir bool) bool) {
	n := 0
	out := func(name string, subdir bool) bool {
		n++
		return emit(name, subdir) && (opts.Limit <= 0 || n < opts.Limit)
	}
	if opts.Reverse {
		scanReverse(c, opts, out)
		return
	}
	var name string
	var ok bool
	switch {
	case opts.Marker != "" && opts.Marker >= opts.Prefix:
		name, ok = c.Seek(opts.Marker)
		if ok && name == opts.Marker {
			name, ok = c.Next()
		}
	default:
		name, ok = c.Seek(opts.Prefix)
	}
	for ok {
		if opts.EndMarker != "" && name >= opts.EndMarker {
			return
		}
		if !strings.HasPrefix(name, opts.Prefix) {
			return
		}
		if opts.Delimiter != "" {
			if i := strings.Index(name[len(opts.Prefix):], opts.Delimiter); i >= 0 {
				sub := name[:len(opts.Prefix)+i+len(opts.Delimiter)]
				if sub != opts.Marker && !out(sub, true) {
					return
				}
				name, ok = c.Seek(sub + afterAll)
				continue
			}
		}
		if !out(name, false) {
			return
		}
		name, ok = c.Next()
	}
}

func scanReverse(c NameCursor, opts ListOptions, out func(string, bool) bool) {
	upper := ""
	if opts.Prefix != "" {
		upper = opts.Prefix + afterAll
	}
	if opts.Marker != "" && (upper == "" || opts.Marker < upper) {
		upper = opts.Marker
	}
	name, ok := c.SeekBefore(upper)
	for ok {
		if opts.EndMarker != "" && name <= opts.EndMarker {
			return
		}
		if !strings.HasPrefix(name, opts.Prefix) {
			return
		}
		if opts.Delimiter != "" {
			if i := strings.Index(name[len(opts.Prefix):], opts.Delimiter); i >= 0 {
				sub := name[:len(opts.Prefix)+i+len(opts.Delimiter)]
				if sub != opts.Marker && !out(sub, true) {
					return
				}
				name, ok = c.SeekBefore(sub)
				continue
			}
		}
		if !out(name, false) {
			return
		}
		name, ok = c.Prev()
	}
}

// SliceCursor is a NameCursor over a sorted slice of names.
type SliceCursor struct {
	// Names are sorted in byte order.
	Names []string
	i     int
}

// Seek implements NameCursor.
func (s *SliceCursor) Seek(name string) (string, bool) {
	lo, hi := 0, len(s.Names)
	for lo < hi {
		m := (lo + hi) / 2
		if s.Names[m] < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	s.i = lo
	return s.at()
}

// SeekBefore implements NameCursor.
func (s *SliceCursor) SeekBefore(name string) (string, bool) {
	if name == "" {
		s.i = len(s.Names) - 1
		return s.at()
	}
	s.Seek(name)
	s.i--
	return s.at()
}

// Next implements NameCursor.
func (s *SliceCursor) Next() (string, bool) { s.i++; return s.at() }

// Prev implements NameCursor.
func (s *SliceCursor) Prev() (string, bool) { s.i--; return s.at() }

func (s *SliceCursor) at() (string, bool) {
	if s.i < 0 || s.i >= len(s.Names) {
		return "", false
	}
	return s.Names[s.i], true
}
