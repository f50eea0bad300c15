package alarming

import "testing"

// FuzzParseCron: time constraints' cron expressions are tenant input.
func FuzzParseCron(f *testing.F) {
	for _, s := range []string{"0 9 * * 1-5", "*/15 9-17 * * *", "0,30 * 1-31/2 */3 0,7", "61 * * * *", "* * * *", "5-1/0 * * * *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCron(s)
		if err != nil {
			return
		}
		if c.min>>60 != 0 || c.hour>>24 != 0 || c.dom>>32 != 0 || c.month>>13 != 0 || c.dow>>8 != 0 {
			t.Fatalf("%q: a value out of its field's range", s)
		}
	})
}
