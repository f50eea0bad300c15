package compute

import (
	"context"
	"slices"
	"time"

	"github.com/stratuskit/stratus/store"
)

// InstanceAction is one user or system action on a server
// (os-instance-actions), with the events of its steps.
type InstanceAction struct {
	store.Meta
	ServerID  string        `json:"instance_uuid"`
	RequestID string        `json:"request_id"`
	Action    string        `json:"action"`
	ProjectID string        `json:"project_id"`
	UserID    string        `json:"user_id"`
	Start     time.Time     `json:"start_time"`
	Updated   time.Time     `json:"updated_at"`
	Message   string        `json:"message,omitempty"`
	Events    []ActionEvent `json:"events"`
}

// StoreKey implements store.Record.
func (a *InstanceAction) StoreKey() string { return a.ServerID + "/" + a.RequestID }

// ActionEvent is one step of an action.
type ActionEvent struct {
	Event     string     `json:"event"`
	Start     time.Time  `json:"start_time"`
	Finish    *time.Time `json:"finish_time,omitempty"`
	Result    string     `json:"result,omitempty"` // Success or Error
	Traceback string     `json:"traceback,omitempty"`
	Host      string     `json:"host,omitempty"`
}

// startActionTxn records a new action for srv and makes it the server's
// current one.
func startActionTxn(tx *store.Txn, srv *Server, action, userID string) error {
	a := &InstanceAction{ServerID: srv.ID, RequestID: "req-" + newUUID(), Action: action, ProjectID: srv.ProjectID,
		UserID: userID, Start: tx.Now(), Updated: tx.Now(), Events: []ActionEvent{}}
	srv.ActionID = a.RequestID
	return tx.Insert(actionTable, a)
}

// eventTxn records the outcome of one step of the server's current action
// (err nil: Success). Steps already recorded as successful are not
// repeated, so that a resumed workflow's log stays readable.
func eventTxn(tx *store.Txn, srv *Server, event, host string, err error) error {
	if srv.ActionID == "" {
		return nil
	}
	a, gerr := store.Get[InstanceAction](nil, tx, actionTable, srv.ID+"/"+srv.ActionID)
	if gerr != nil {
		return nil //nolint:nilerr // the action was purged with its server
	}
	now := tx.Now()
	ev := ActionEvent{Event: event, Start: now, Finish: &now, Result: "Success", Host: host}
	if err != nil {
		ev.Result, ev.Traceback = "Error", err.Error()
		a.Message = "Error"
	} else {
		for _, e := range a.Events {
			if e.Event == event && e.Result == "Success" {
				return nil
			}
		}
	}
	a.Events = append(slices.Clone(a.Events), ev)
	a.Updated = now
	return tx.Update(actionTable, a)
}

// ListInstanceActions returns a server's actions, newest first.
func (s *Service) ListInstanceActions(ctx context.Context, serverID string) ([]*InstanceAction, error) {
	srv, err := s.GetServer(ctx, serverID)
	if err != nil {
		return nil, err
	}
	if _, err := s.enforce(ctx, "compute:server:actions", srv.ProjectID); err != nil {
		return nil, err
	}
	it, err := store.List[InstanceAction](nil, s.st.Snapshot(), actionTable, "server", srv.ID)
	if err != nil {
		return nil, err
	}
	out := slices.Collect(it)
	slices.SortFunc(out, func(a, b *InstanceAction) int { return b.Start.Compare(a.Start) })
	return out, nil
}

// GetInstanceAction returns one action of a server by request id.
func (s *Service) GetInstanceAction(ctx context.Context, serverID, requestID string) (*InstanceAction, error) {
	srv, err := s.GetServer(ctx, serverID)
	if err != nil {
		return nil, err
	}
	if _, err := s.enforce(ctx, "compute:server:actions", srv.ProjectID); err != nil {
		return nil, err
	}
	a, err := store.Get[InstanceAction](nil, s.st.Snapshot(), actionTable, srv.ID+"/"+requestID)
	if err != nil {
		return nil, notFound("action", requestID)
	}
	return a, nil
}
