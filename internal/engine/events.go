package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/darse/darse/internal/firewall"
)

// Events subscribes to the engine's events that can change the firewall:
// containers starting and stopping, networks created, removed, connected
// and disconnected. When it returns without error the subscription is
// live, so a snapshot taken afterwards misses nothing. The error channel
// reports the end of the stream (engine gone, ctx done); the event
// channel is never closed.
func (s *FirewallSource) Events(ctx context.Context) (<-chan firewall.Event, <-chan error, error) {
	f := client.Filters{}.
		Add("type", string(events.ContainerEventType), string(events.NetworkEventType)).
		Add("event", string(events.ActionStart), string(events.ActionDie), string(events.ActionDestroy),
			string(events.ActionRename), string(events.ActionCreate), string(events.ActionConnect),
			string(events.ActionDisconnect), string(events.ActionRemove))
	res := s.e.c.Events(ctx, client.EventsListOptions{Filters: f})
	// The client only returns once the engine answered or failed.
	select {
	case err := <-res.Err:
		if err == nil {
			err = fmt.Errorf("event stream ended")
		}
		return nil, nil, fmt.Errorf("subscribe to engine events: %w", err)
	default:
	}
	out := make(chan firewall.Event, 64)
	errc := make(chan error, 1)
	go func() {
		for {
			select {
			case m := <-res.Messages:
				ev, ok := fwEvent(m)
				if !ok || !s.inScope(m) {
					continue
				}
				select {
				case out <- ev:
				case <-ctx.Done():
					errc <- ctx.Err()
					return
				}
			case err := <-res.Err:
				if err == nil {
					err = fmt.Errorf("event stream ended")
				}
				errc <- err
				return
			}
		}
	}()
	return out, errc, nil
}

// inScope drops container events of containers outside the source's
// label: their attributes carry the container's labels.
func (s *FirewallSource) inScope(m events.Message) bool {
	if s.label == "" || m.Type != events.ContainerEventType {
		return true
	}
	return hasLabel(m.Actor.Attributes, s.label)
}

func fwEvent(m events.Message) (firewall.Event, bool) {
	ev := firewall.Event{Action: string(m.Action), Time: time.Unix(0, m.TimeNano)}
	if m.TimeNano == 0 {
		ev.Time = time.Unix(m.Time, 0)
	}
	switch m.Type {
	case events.ContainerEventType:
		if m.Action == events.ActionCreate {
			return ev, false // nothing runs yet; start follows
		}
		ev.Container = m.Actor.ID
		ev.Stopped = m.Action == events.ActionDie || m.Action == events.ActionDestroy
	case events.NetworkEventType:
		switch m.Action {
		case events.ActionConnect, events.ActionDisconnect:
			ev.Container = m.Actor.Attributes["container"]
		case events.ActionCreate, events.ActionDestroy, events.ActionRemove:
			ev.Networks = true
		default:
			return ev, false
		}
	default:
		return ev, false
	}
	return ev, true
}
