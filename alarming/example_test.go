package alarming_test

import (
	"fmt"
	"time"

	"github.com/stratuskit/stratus/alarming"
)

// A webhook receiver checks the signature of each body with the alarm's
// webhook_secret (shown in the alarm's JSON) and refuses old ones.
func ExampleVerify() {
	secret := "the alarm's webhook_secret"
	body := []byte(`{"alarm_id":"a1","current":"alarm","previous":"ok"}`)
	sent := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	header := alarming.Sign(secret, sent, body) // what Stratus sends in X-Stratus-Signature

	fmt.Println(alarming.Verify(secret, header, body, sent.Add(10*time.Second), 5*time.Minute))
	fmt.Println(alarming.Verify(secret, header, []byte(`{"forged":true}`), sent, 5*time.Minute))
	fmt.Println(alarming.Verify(secret, header, body, sent.Add(time.Hour), 5*time.Minute))
	// Output:
	// <nil>
	// alarming: bad signature
	// alarming: signature too old
}
