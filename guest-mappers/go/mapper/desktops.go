package main

import (
	"fmt"
	"strconv"
	"time"

	"interstate/sdk/mapper"
)

// lastDesktopTTL is how long the store remembers a user's last desktop.
const lastDesktopTTL = 30 * 24 * time.Hour

// lastDesktopKey is the store key of the id of the desktop a user last launched.
func lastDesktopKey(username string) string { return "last-desktop:" + username }

// powerOperations is what every desktop offers when a power API is configured.
var powerOperations = []mapper.Operation{mapper.OperationRestart, mapper.OperationPowerDown, mapper.OperationPowerUp}

// ListDesktops lists the desktops of a user, looked up again in the settings (the identity's
// attributes are not trusted, and the settings may have changed since login), with the one
// the user last launched first.
func (p *ExamplePolicy) ListDesktops(user mapper.Identity, _ mapper.ClientInfo) ([]mapper.Desktop, error) {
	entries, err := p.desktopsOf(user.Username)
	if err != nil {
		return nil, err
	}
	operations := []mapper.Operation{}
	if p.settings.PowerAPI != "" {
		operations = powerOperations
	}
	desktops := make([]mapper.Desktop, 0, len(entries))
	for _, entry := range entries {
		desktops = append(desktops, mapper.Desktop{
			Id:          entry.ID,
			Name:        entry.Name,
			Hostname:    entry.Hostname,
			AgentPort:   agentPort(entry),
			SessionKind: mapper.SessionVDI,
			State:       mapper.StateUnknown,
			Operations:  operations,
		})
	}
	if len(desktops) > 1 {
		desktops = p.lastFirst(user.Username, desktops)
	}
	logUser(p.host, user.Username, fmt.Sprintf("%d desktop(s)", len(desktops)))
	return desktops, nil
}

// lastFirst moves the desktop the user last launched to the front, the others keeping their
// order. A store that cannot be read changes nothing.
func (p *ExamplePolicy) lastFirst(username string, desktops []mapper.Desktop) []mapper.Desktop {
	last, found, err := p.host.StoreGet(lastDesktopKey(username))
	if err != nil {
		p.host.Log(mapper.Warn, fmt.Sprintf("user %s: last desktop not read: %v", strconv.Quote(username), err))
		return desktops
	}
	if !found {
		return desktops
	}
	for index, desktop := range desktops {
		if desktop.Id == string(last) {
			ordered := append([]mapper.Desktop{desktop}, desktops[:index]...)
			return append(ordered, desktops[index+1:]...)
		}
	}
	return desktops
}

// Allocate launches the user's desktop with that id, or refuses; a launch is remembered as
// the user's last desktop.
func (p *ExamplePolicy) Allocate(user mapper.Identity, desktopID string, _ mapper.ClientInfo) (mapper.Allocation, error) {
	entry, found, err := p.desktopOf(user.Username, desktopID)
	if err != nil {
		return mapper.Allocation{}, err
	}
	if !found {
		logUser(p.host, user.Username, "refused desktop "+strconv.Quote(desktopID))
		return mapper.Refused(mapper.UnknownDesktop, strconv.Quote(desktopID)+" is not one of the user's desktops"), nil
	}
	if err := p.host.StoreSet(lastDesktopKey(user.Username), []byte(entry.ID), lastDesktopTTL); err != nil {
		p.host.Log(mapper.Warn, fmt.Sprintf("user %s: last desktop not kept: %v", strconv.Quote(user.Username), err))
	}
	logUser(p.host, user.Username, "launch on "+entry.Hostname)
	return mapper.LaunchOn(mapper.Launch{
		Hostname:  entry.Hostname,
		AgentPort: agentPort(entry),
		Username:  mapper.None[string](),
		Domain:    mapper.None[string](),
	}), nil
}

// desktopsOf is the desktops of a known, enabled user; none otherwise.
func (p *ExamplePolicy) desktopsOf(username string) ([]DesktopEntry, error) {
	settings, err := p.current()
	if err != nil {
		return nil, err
	}
	user, known := settings.Users[username]
	if !known || user.Disabled {
		return nil, nil
	}
	return settings.DesktopsOf(user), nil
}

// desktopOf is the user's desktop with that id; found is false when it is not one of theirs.
func (p *ExamplePolicy) desktopOf(username, desktopID string) (entry DesktopEntry, found bool, err error) {
	entries, err := p.desktopsOf(username)
	if err != nil {
		return DesktopEntry{}, false, err
	}
	for _, entry := range entries {
		if entry.ID == desktopID {
			return entry, true, nil
		}
	}
	return DesktopEntry{}, false, nil
}

func agentPort(entry DesktopEntry) mapper.Option[uint16] {
	if entry.AgentPort == 0 {
		return mapper.None[uint16]()
	}
	return mapper.Some(entry.AgentPort)
}
