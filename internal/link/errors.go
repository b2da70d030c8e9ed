package link

import (
	"errors"
	"fmt"
)

// Domain errors. Every error a Manager method returns wraps one of these (or
// is an unexpected failure); the REST layer maps them to statuses.
var (
	// ErrClusterNotFound: the cluster id is not the destination's.
	ErrClusterNotFound = errors.New("cluster not found")
	// ErrLinkNotFound: no link of that name.
	ErrLinkNotFound = errors.New("cluster link not found")
	// ErrLinkExists: a link of that name exists.
	ErrLinkExists = errors.New("cluster link already exists")
	// ErrLinkInUse: the link still has mirrors that are mirroring.
	ErrLinkInUse = errors.New("cluster link in use")
	// ErrMirrorNotFound: no mirror topic of that name on the link.
	ErrMirrorNotFound = errors.New("mirror topic not found")
	// ErrTopicNotFound: the destination has no such topic.
	ErrTopicNotFound = errors.New("topic not found")
	// ErrTopicExists: the destination already has the topic.
	ErrTopicExists = errors.New("topic already exists")
	// ErrInvalid: the request is well-formed but not acceptable (bad
	// config, bad name, unknown source topic, unreachable source).
	ErrInvalid = errors.New("invalid request")
	// ErrConfigNotFound: unknown link config name.
	ErrConfigNotFound = errors.New("link config not found")
	// ErrNotMirror refuses an operation Strait does only on mirror topics.
	ErrNotMirror = errors.New("not a mirror topic")
)

// Error is a domain error with the message the API shows.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func (e *Error) Unwrap() error { return e.Kind }

func errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// linkNotFound is the error for an unknown link name.
func linkNotFound(name string) error {
	return errorf(ErrLinkNotFound, "Cluster link '%s' does not exist.", name)
}
