package main

import (
	"crypto/subtle"
	"fmt"
	"unicode/utf8"

	"interstate/sdk/mapper"
)

var passwordRejectionNames = map[mapper.PasswordRejectionKind]string{
	mapper.WrongPassword:   "wrong-password",
	mapper.WeakPassword:    "weak-password",
	mapper.TooManyAttempts: "too-many-attempts",
	mapper.DirectoryError:  "directory-error",
}

// ChangePassword changes a user's password: the new hash goes into the store (the settings
// are the operator's), and the login goes on as after a right password. Neither password is
// ever logged.
func (p *ExamplePolicy) ChangePassword(change mapper.PasswordChange) (mapper.PasswordChangeOutcome, error) {
	settings, err := p.current()
	if err != nil {
		return mapper.PasswordChangeOutcome{}, err
	}
	user, known := settings.Users[change.Username]
	if !known {
		p.host.VerifyPassword(change.OldPassword, decoyHash)
		return p.refuseChange(change.Username, mapper.WrongPassword, "unknown user"), nil
	}
	hash, _, err := p.passwordHash(user)
	if err != nil {
		return p.refuseChange(user.Username, mapper.DirectoryError, err.Error()), nil
	}
	if !p.host.VerifyPassword(change.OldPassword, hash) {
		return p.refuseChange(user.Username, mapper.WrongPassword, "wrong password"), nil
	}
	if utf8.RuneCountInString(change.NewPassword) < settings.MinPasswordLength {
		return p.refuseChange(user.Username, mapper.WeakPassword,
			fmt.Sprintf("the new password is shorter than %d characters", settings.MinPasswordLength)), nil
	}
	if subtle.ConstantTimeCompare([]byte(change.NewPassword), []byte(change.OldPassword)) == 1 {
		return p.refuseChange(user.Username, mapper.WeakPassword, "the new password is the old one"), nil
	}
	newHash := p.host.HashPassword(change.NewPassword)
	if err := p.host.StoreSet(passwordHashKey(user.Username), []byte(newHash), 0); err != nil {
		return p.refuseChange(user.Username, mapper.DirectoryError, err.Error()), nil
	}
	// What a login answers after a right password: a disabled user or one without desktops
	// is still refused, as the login would refuse them.
	next, refused := p.refusal(user)
	if !refused {
		next = p.afterPassword(user)
	}
	logUser(p.host, user.Username, "password changed, then "+describeAuth(next))
	return mapper.PasswordChanged(next), nil
}

func (p *ExamplePolicy) refuseChange(username string, kind mapper.PasswordRejectionKind, reason string) mapper.PasswordChangeOutcome {
	logUser(p.host, username, fmt.Sprintf("password not changed (%s: %s)", passwordRejectionNames[kind], reason))
	return mapper.PasswordRejected(kind, reason)
}
