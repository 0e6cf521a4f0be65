package mapper

// Level is a log severity for Log.
type Level uint8

// The log levels, lowest first.
const (
	Trace Level = iota
	Debug
	Info
	Warn
	Error
)
