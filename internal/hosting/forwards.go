package hosting

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
	"github.com/darse/darse/internal/template"
)

// AddForward exposes a port of the site's web service on a host port
// allocated from 40000-50000: the forward is stored, the folder rendered
// again with its exposure labels (read by the firewall watcher) and the
// service recreated. If the folder cannot be rendered the forward is
// dropped again. Asked again for the same port, it returns the forward
// already there and converges (so an interrupted call can simply be
// repeated).
func (h *Hosting) AddForward(ctx context.Context, name string, port int, proto string) (*store.Forward, reconcile.Plan, error) {
	s, err := h.get(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	if port < 1 || port > 65535 {
		return nil, nil, inputErr(&site.FieldError{Field: "port", Value: strconv.Itoa(port), Rule: "must be a port number from 1 to 65535"})
	}
	if proto == "" {
		proto = string(labels.TCP)
	}
	if proto != string(labels.TCP) && proto != string(labels.UDP) {
		return nil, nil, inputErr(&site.FieldError{Field: "protocol", Value: proto, Rule: "must be tcp or udp"})
	}
	if err := h.checkDrift(s); err != nil {
		return nil, nil, err
	}
	t, err := template.Load(h.cfg.TemplatesDir(), s.Template)
	if err != nil {
		return nil, nil, err
	}
	existing, err := h.store.ListForwards(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range existing {
		if f.Service == t.Web.Service && f.ContainerPort == port && f.Proto == proto {
			files, err := h.renderStored(ctx, s)
			if err != nil {
				return nil, nil, err
			}
			_, plan, err := h.write(ctx, s, files)
			return f, plan, err
		}
	}
	f, err := h.store.AddForward(ctx, store.Forward{Site: name, Service: t.Web.Service, ContainerPort: port, Proto: proto})
	if errors.Is(err, store.ErrForwardExists) || errors.Is(err, store.ErrNoFreePort) {
		return nil, nil, inputErr(&site.FieldError{Field: "port", Value: strconv.Itoa(port), Rule: errors.Unwrap(err).Error()})
	}
	if err != nil {
		return nil, nil, err
	}
	files, err := h.renderStored(ctx, s)
	if err != nil {
		h.store.DeleteForward(context.WithoutCancel(ctx), name, f.HostPort)
		return nil, nil, err
	}
	_, plan, err := h.write(ctx, s, files)
	if err == nil {
		h.log.Info("port forwarded", "site", name, "port", port, "host_port", f.HostPort, "proto", proto)
	}
	return f, plan, err
}

// RemoveForward stops forwarding the site's host port.
func (h *Hosting) RemoveForward(ctx context.Context, name string, hostPort int) (reconcile.Plan, error) {
	s, err := h.get(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := h.checkDrift(s); err != nil {
		return nil, err
	}
	if err := h.refuseSSHForward(ctx, s, hostPort); err != nil {
		return nil, err
	}
	if err := h.store.DeleteForward(ctx, name, hostPort); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, inputErr(&site.FieldError{Field: "host port", Value: strconv.Itoa(hostPort), Rule: "is not forwarded for site " + name})
		}
		return nil, err
	}
	files, err := h.renderStored(ctx, s)
	if err != nil {
		return nil, err
	}
	_, plan, err := h.write(ctx, s, files)
	return plan, err
}

// exposures renders the site's forwards as darse.expose labels on the
// service each forwards to: members' port forwards (fwd<hostport>) on the
// web service, SSH access ("ssh") on the template's SSH service.
func (h *Hosting) exposures(ctx context.Context, name string, t *template.Template) (map[string]map[string]string, error) {
	fs, err := h.store.ListForwards(ctx, name)
	if err != nil {
		return nil, err
	}
	byService := map[string][]labels.Exposure{}
	for _, f := range fs {
		x := labels.Exposure{Name: fmt.Sprintf("fwd%d", f.HostPort), Protocol: labels.Protocol(f.Proto), Port: f.ContainerPort, HostPort: f.HostPort}
		if isSSH(t, f) {
			x.Name = sshExposure
		}
		byService[f.Service] = append(byService[f.Service], x)
	}
	out := make(map[string]map[string]string, len(byService))
	for svc, xs := range byService {
		xl, err := labels.Expose(xs)
		if err != nil {
			return nil, fmt.Errorf("site %q forwards: %w", name, err)
		}
		out[svc] = xl
	}
	return out, nil
}
