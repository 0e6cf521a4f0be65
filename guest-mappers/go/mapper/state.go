package main

import (
	"encoding/json"
	"errors"
)

// The stages a step state names.
const (
	stageDisclaimer = "disclaimer"
	stageCode       = "code"
)

// stepState is what a disclaimer's or a dialog's opaque state carries to the next step:
// {"user": name, "stage": "disclaimer"} or {"user": name, "stage": "code", "attempts": n}.
type stepState struct {
	User     string
	Stage    string
	Attempts int
}

func disclaimerState(username string) string {
	// Marshalling a struct of strings cannot fail.
	state, _ := json.Marshal(struct {
		User  string `json:"user"`
		Stage string `json:"stage"`
	}{username, stageDisclaimer})
	return string(state)
}

func codeState(username string, attempts int) string {
	// Marshalling a struct of strings and an int cannot fail.
	state, _ := json.Marshal(struct {
		User     string `json:"user"`
		Stage    string `json:"stage"`
		Attempts int    `json:"attempts"`
	}{username, stageCode, attempts})
	return string(state)
}

// parseStepState reads a state this policy wrote; anything else is an error (the host keeps
// the state, so a malformed one is a bug, not a user's doing).
func parseStepState(state string) (stepState, error) {
	var parsed struct {
		User     *string `json:"user"`
		Stage    *string `json:"stage"`
		Attempts *int    `json:"attempts"`
	}
	if err := json.Unmarshal([]byte(state), &parsed); err != nil {
		return stepState{}, errors.New("step state is not valid JSON")
	}
	if parsed.User == nil || parsed.Stage == nil {
		return stepState{}, errors.New("step state is malformed")
	}
	switch *parsed.Stage {
	case stageDisclaimer:
		return stepState{User: *parsed.User, Stage: stageDisclaimer}, nil
	case stageCode:
		if parsed.Attempts == nil || *parsed.Attempts < 0 || *parsed.Attempts >= maxCodeAttempts {
			return stepState{}, errors.New("step state is malformed")
		}
		return stepState{User: *parsed.User, Stage: stageCode, Attempts: *parsed.Attempts}, nil
	}
	return stepState{}, errors.New("step state is malformed")
}
