package identity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/internal/httpapi"
	"github.com/stratuskit/stratus/store"
)

// SecurityCompliance is the account and password policy, as Keystone's
// [security_compliance] options. Zero values disable each rule. Each
// failure gives the error Keystone gives, with its status and message.
//
// Users are exempted from some rules by their options, as in Keystone:
// "ignore_lockout_failure_attempts", "ignore_password_expiry" and
// "ignore_change_password_upon_first_use" (true).
type SecurityCompliance struct {
	// LockoutFailureAttempts locks a user after that many consecutive
	// failed password authentications (401 "The account is locked for
	// user: <id>.").
	LockoutFailureAttempts int
	// LockoutDuration is how long the account stays locked. Default (with
	// LockoutFailureAttempts set): 30 minutes.
	LockoutDuration time.Duration
	// PasswordRegex, if set, must match every new password (400 "The
	// password does not match the requirements: <description>.").
	PasswordRegex string
	// PasswordRegexDescription explains PasswordRegex to users.
	PasswordRegexDescription string
	// PasswordExpiresDays makes passwords expire that many days after they
	// are set (401 "The password is expired and needs to be changed for
	// user: <id>.").
	PasswordExpiresDays int
	// UniqueLastPasswordCount refuses a new password equal to one of the
	// last UniqueLastPasswordCount-1 passwords, the current one included
	// (400). 0 and 1 disable the check.
	UniqueLastPasswordCount int
	// MinimumPasswordAge is the number of days a password must be used
	// before its user may change it (400). Admins may reset it anytime.
	MinimumPasswordAge int
	// ChangePasswordUponFirstUse makes the password of a new user, or one
	// reset by an admin, expired at once: the user must change it (with
	// POST /v3/users/{id}/password, which needs no token) before logging in.
	ChangePasswordUponFirstUse bool
	// DisableUserAccountDaysInactive refuses users who have not
	// authenticated for that many days (401 "The account is disabled for
	// user: <id>.").
	DisableUserAccountDaysInactive int
}

func (sc SecurityCompliance) validate() error {
	if sc.PasswordRegex != "" {
		if _, err := regexp.Compile(sc.PasswordRegex); err != nil {
			return errdefs.Invalid("Security.PasswordRegex", "%v", err)
		}
	}
	if sc.LockoutFailureAttempts < 0 || sc.LockoutDuration < 0 || sc.PasswordExpiresDays < 0 ||
		sc.UniqueLastPasswordCount < 0 || sc.MinimumPasswordAge < 0 || sc.DisableUserAccountDaysInactive < 0 {
		return errdefs.Invalid("Security", "values must not be negative")
	}
	return nil
}

func (sc SecurityCompliance) lockoutDuration() time.Duration {
	if sc.LockoutDuration == 0 {
		return 30 * time.Minute
	}
	return sc.LockoutDuration
}

const day = 24 * time.Hour

func userOption(u *User, name string) bool {
	v, _ := u.Options[name].(bool)
	return v
}

// Keystone's errors, with its statuses and messages.

func errAccountLocked(userID string) error {
	return errUnauthenticated("The account is locked for user: " + userID + ".")
}

func errPasswordExpired(userID string) error {
	return errUnauthenticated("The password is expired and needs to be changed for user: " + userID + ".")
}

func errUserDisabled(userID string) error {
	return errUnauthenticated("The account is disabled for user: " + userID + ".")
}

func passwordInvalid(msg string) error {
	return &httpapi.HTTPError{Status: http.StatusBadRequest, Message: msg, Err: errdefs.Invalid("password", "%s", msg)}
}

// locked reports whether u is locked out at now.
func (s *Service) locked(u *User, now time.Time) bool {
	sc := s.cfg.Security
	return sc.LockoutFailureAttempts > 0 && !userOption(u, "ignore_lockout_failure_attempts") &&
		u.FailedAuthCount >= sc.LockoutFailureAttempts && u.FailedAuthAt != nil &&
		now.Before(u.FailedAuthAt.Add(sc.lockoutDuration()))
}

// inactive reports whether u has not authenticated for too long.
func (s *Service) inactive(u *User, now time.Time) bool {
	days := s.cfg.Security.DisableUserAccountDaysInactive
	return days > 0 && u.LastActiveAt != nil && now.Sub(*u.LastActiveAt) >= time.Duration(days)*day
}

// passwordExpired reports whether u's password has expired at now.
func passwordExpired(u *User, now time.Time) bool {
	return u.PasswordExpiresAt != nil && !now.Before(*u.PasswordExpiresAt) && !userOption(u, "ignore_password_expiry")
}

// recordAuthFailure counts a failed password authentication of userID for
// the lockout.
func (s *Service) recordAuthFailure(ctx context.Context, userID string) {
	if s.cfg.Security.LockoutFailureAttempts <= 0 {
		return
	}
	now := s.now()
	err := s.update(ctx, func(tx *store.Txn) error {
		u, err := store.Get[User](nil, tx, userTable, userID)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil // deleted meanwhile
		} else if err != nil {
			return err
		}
		if u.FailedAuthCount >= s.cfg.Security.LockoutFailureAttempts && u.FailedAuthAt != nil &&
			!now.Before(u.FailedAuthAt.Add(s.cfg.Security.lockoutDuration())) {
			u.FailedAuthCount = 0 // a lockout that has ended; as in Keystone, failures count until a success
		}
		u.FailedAuthCount++
		u.FailedAuthAt = &now
		return tx.Update(userTable, u)
	})
	if err != nil {
		s.log.Warn("identity: record failed authentication", "user", userID, "err", err)
	}
}

// recordAuthSuccess resets the failure count and marks the user active
// (once a day), when those rules are on.
func (s *Service) recordAuthSuccess(ctx context.Context, u *User) {
	now := s.now()
	reset := u.FailedAuthCount > 0
	touch := s.cfg.Security.DisableUserAccountDaysInactive > 0 &&
		(u.LastActiveAt == nil || now.Sub(*u.LastActiveAt) >= day)
	if !reset && !touch {
		return
	}
	err := s.update(ctx, func(tx *store.Txn) error {
		cur, err := store.Get[User](nil, tx, userTable, u.ID)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil // deleted meanwhile
		} else if err != nil {
			return err
		}
		if reset {
			cur.FailedAuthCount, cur.FailedAuthAt = 0, nil
		}
		if touch {
			cur.LastActiveAt = &now
		}
		return tx.Update(userTable, cur)
	})
	if err != nil {
		s.log.Warn("identity: record authentication", "user", u.ID, "err", err)
	}
}

// checkNewPassword applies the password rules to a new password pw of u
// (nil for a new user). selfService is a user changing its own password,
// to which the minimum age applies.
func (s *Service) checkNewPassword(u *User, pw string, selfService bool) error {
	sc := s.cfg.Security
	if s.pwRegex != nil {
		if !s.pwRegex.MatchString(pw) {
			return passwordInvalid("The password does not match the requirements: " + sc.PasswordRegexDescription + ".")
		}
	}
	if u == nil {
		return nil
	}
	if selfService && sc.MinimumPasswordAge > 0 && u.PasswordCreatedAt != nil {
		age := s.now().Sub(*u.PasswordCreatedAt)
		if minAge := time.Duration(sc.MinimumPasswordAge) * day; age < minAge {
			left := int((minAge - age + day - 1) / day)
			return passwordInvalid(fmt.Sprintf("You cannot change your password at this time due to the minimum password age. "+
				"Once you change your password, it must be used for %d day(s) before it can be changed. "+
				"Please try again in %d day(s) or contact your administrator to reset your password.", sc.MinimumPasswordAge, left))
		}
	}
	if n := sc.UniqueLastPasswordCount; n > 1 {
		prev := append([]string{u.PasswordHash}, u.PasswordHistory...)
		for i, h := range prev {
			if i >= n-1 {
				break
			}
			if h != "" && verifyPassword(h, pw) {
				return passwordInvalid(fmt.Sprintf("The new password cannot be identical to a previous password. "+
					"The total number which includes the new password must be unique is %d.", n))
			}
		}
	}
	return nil
}

// setPassword gives u the password hash, keeping the history and setting
// the expiry. selfService is a user changing its own password; otherwise
// (creation, admin reset) the password may have to be changed on first use.
func (s *Service) setPassword(u *User, hash string, selfService bool, now time.Time) {
	sc := s.cfg.Security
	if u.PasswordHash != "" && sc.UniqueLastPasswordCount > 2 {
		u.PasswordHistory = append([]string{u.PasswordHash}, u.PasswordHistory...)
		if len(u.PasswordHistory) > sc.UniqueLastPasswordCount-2 {
			u.PasswordHistory = u.PasswordHistory[:sc.UniqueLastPasswordCount-2]
		}
	} else {
		u.PasswordHistory = nil
	}
	u.PasswordHash = hash
	u.PasswordCreatedAt = &now
	u.FailedAuthCount, u.FailedAuthAt = 0, nil
	u.PasswordExpiresAt = nil
	switch {
	case !selfService && sc.ChangePasswordUponFirstUse && !userOption(u, "ignore_change_password_upon_first_use"):
		u.PasswordExpiresAt = &now
	case sc.PasswordExpiresDays > 0 && !userOption(u, "ignore_password_expiry"):
		t := now.Add(time.Duration(sc.PasswordExpiresDays) * day)
		u.PasswordExpiresAt = &t
	}
}
