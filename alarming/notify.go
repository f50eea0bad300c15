package alarming

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries a webhook's signature:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">", keyed with the
// alarm's webhook secret (Alarm JSON's webhook_secret, from Secret). The
// receiver recomputes it and rejects old timestamps to stop replays.
const SignatureHeader = "X-Stratus-Signature"

// Notification is the body POSTed to an alarm's actions (Aodh's).
type Notification struct {
	AlarmName  string         `json:"alarm_name"`
	AlarmID    string         `json:"alarm_id"`
	Severity   string         `json:"severity"`
	Previous   string         `json:"previous"`
	Current    string         `json:"current"`
	Reason     string         `json:"reason"`
	ReasonData map[string]any `json:"reason_data"`
}

// Secret returns the alarm's webhook signing secret: HMAC-SHA256 of its
// id keyed with the cloud's WebhookKey, in hex. Each alarm has its own,
// shown to its project only.
func (s *Service) Secret(alarmID string) string {
	m := hmac.New(sha256.New, s.cfg.WebhookKey)
	m.Write([]byte("stratus-alarm-webhook\x00" + alarmID))
	return hex.EncodeToString(m.Sum(nil))
}

// Sign returns the SignatureHeader value of body sent at t with secret.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a SignatureHeader value against body and secret, and that
// it was made within maxAge of now.
func Verify(secret, header string, body []byte, now time.Time, maxAge time.Duration) error {
	var ts, sig string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("alarming: malformed signature")
	}
	t := time.Unix(sec, 0)
	if d := now.Sub(t); d > maxAge || d < -maxAge {
		return errors.New("alarming: signature too old")
	}
	want := Sign(secret, t, body)
	if !hmac.Equal([]byte(want), []byte("t="+ts+",v1="+sig)) {
		return errors.New("alarming: bad signature")
	}
	return nil
}

// fire sends the actions of the alarm's new state in the background, each
// with bounded retries.
func (s *Service) fire(a *Alarm, prev string, v verdict) {
	urls := actionsFor(a, a.State)
	if len(urls) == 0 {
		return
	}
	n := Notification{AlarmName: a.Name, AlarmID: a.ID, Severity: a.Severity, Previous: prev, Current: a.State,
		Reason: v.reason, ReasonData: map[string]any{"type": "threshold", "count": len(v.values),
			"most_recent": last(v.values), "disposition": a.State}}
	body, err := json.Marshal(n)
	if err != nil {
		return
	}
	s.mu.Lock()
	ctx, stopped := s.sendCtx, s.stopped
	if !stopped {
		s.sendWG.Add(len(urls))
	}
	s.mu.Unlock()
	if stopped {
		return
	}
	for _, u := range urls {
		go func() {
			defer s.sendWG.Done()
			if err := s.send(ctx, a, u, body); err != nil {
				s.log.Warn("alarming: action failed", "alarm", a.ID, "url", redact(u), "err", err)
			}
		}()
	}
}

func last(vs []float64) any {
	if len(vs) == 0 {
		return nil
	}
	return vs[len(vs)-1]
}

// redact drops an action URL's query (which may hold a signature).
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

// send POSTs body to one action, tried again up to Config.Retries times
// with doubling backoff on a transport error or a 5xx or 429 answer.
func (s *Service) send(ctx context.Context, a *Alarm, raw string, body []byte) error {
	target := raw
	trust := strings.HasPrefix(raw, "trust+")
	if trust {
		target = strings.TrimPrefix(raw, "trust+")
	}
	// Checked again: the allowed hosts may have changed since creation.
	if err := s.checkAction(raw); err != nil {
		return err
	}
	backoff := s.cfg.RetryBackoff
	var err error
	for attempt := 0; attempt <= s.cfg.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff *= 2
		}
		var retry bool
		retry, err = s.post(ctx, a, target, trust, body)
		if err == nil || !retry {
			return err
		}
	}
	return err
}

func (s *Service) post(ctx context.Context, a *Alarm, target string, trust bool, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "stratus-alarming")
	req.Header.Set(SignatureHeader, Sign(s.Secret(a.ID), time.Now(), body))
	if trust {
		if a.TrustID == "" || s.cfg.Trusts == nil {
			return false, errors.New("no trust for a trust+ action")
		}
		tok, err := s.cfg.Trusts.Token(ctx, a.TrustID)
		if err != nil {
			return true, fmt.Errorf("trust token: %w", err)
		}
		req.Header.Set("X-Auth-Token", tok)
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return true, err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return true, fmt.Errorf("answered %s", resp.Status)
	}
	return false, fmt.Errorf("answered %s", resp.Status)
}
