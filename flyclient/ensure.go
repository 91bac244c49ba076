package flyclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// Machine names derived from deployment ids: "fd-<id>" when the id is already
// a clean name fragment (a UUID is), else "fdx-<cleaned prefix>-<hash>". The
// two prefixes keep the forms from ever colliding.
const (
	machineNamePrefix       = "fd-"
	hashedMachineNamePrefix = "fdx-"
	maxMachineNameLen       = 63 // a DNS label
)

// MachineNameFor returns the Fly machine name of a deployment: deterministic,
// distinct for distinct ids, and a valid DNS label (lowercase letters, digits
// and hyphens, at most 63 characters). A lower-case UUID maps to "fd-<uuid>".
func MachineNameFor(deploymentID string) string {
	if cleanNameFragment(deploymentID) && len(machineNamePrefix)+len(deploymentID) <= maxMachineNameLen {
		return machineNamePrefix + deploymentID
	}
	var b strings.Builder
	hyphen := false
	for _, r := range strings.ToLower(deploymentID) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			hyphen = false
		} else if !hyphen && b.Len() > 0 {
			b.WriteByte('-')
			hyphen = true
		}
	}
	sum := sha256.Sum256([]byte(deploymentID))
	hash := hex.EncodeToString(sum[:8])
	keep := b.String()
	if room := maxMachineNameLen - len(hashedMachineNamePrefix) - 1 - len(hash); len(keep) > room {
		keep = keep[:room]
	}
	keep = strings.Trim(keep, "-")
	if keep == "" {
		return hashedMachineNamePrefix + hash
	}
	return hashedMachineNamePrefix + keep + "-" + hash
}

// cleanNameFragment: non-empty, [a-z0-9-], no leading, trailing or double
// hyphen.
func cleanNameFragment(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z') && !(ch >= '0' && ch <= '9') && ch != '-' {
			return false
		}
	}
	return true
}

// EnsureMachine creates the machine of a deployment at most once. The name is
// MachineNameFor(deploymentID) (in.Name is ignored) and
// config.metadata.deployment_id is set to deploymentID. When the create meets
// "name taken", or its outcome is unknown (408, a timeout, a 5xx other than
// insufficient capacity, a connection dropped after sending, an unreadable
// 2xx body), EnsureMachine looks for the deployment's machine and returns it;
// only when there is none does it send the create again (at most MaxRetries
// times, with backoff). created is true only when this call's create was
// answered with the new machine; a machine found after a conflict or a lost
// answer reports false.
func (c *Client) EnsureMachine(ctx context.Context, deploymentID string, in CreateMachineInput) (m *Machine, created bool, err error) {
	if deploymentID == "" {
		return nil, false, fmt.Errorf("ensuring machine: deployment id is empty: %w", ErrInvalidInput)
	}
	in.Name = MachineNameFor(deploymentID)
	meta := make(map[string]string, len(in.Config.Metadata)+1)
	for k, v := range in.Config.Metadata {
		meta[k] = v
	}
	meta[MetadataDeploymentID] = deploymentID
	in.Config.Metadata = meta

	wrap := func(err error) error {
		return fmt.Errorf("ensuring machine %s for deployment %s: %w", in.Name, deploymentID, err)
	}
	for attempt := 0; ; attempt++ {
		m, err := c.createOnce(ctx, in)
		if err == nil {
			return m, true, nil
		}
		taken := errors.Is(err, ErrNameTaken)
		if !taken && !ambiguousCreate(ctx, err) {
			return nil, false, wrap(err)
		}
		if ctx.Err() != nil {
			return nil, false, wrap(err)
		}
		c.logger(ctx).V(1).Info("Looking for the deployment's machine after a create", "deployment", deploymentID, "machineName", in.Name, "error", err.Error())
		found, ferr := c.findDeploymentMachine(ctx, deploymentID, in.Name, taken)
		if errors.Is(ferr, ErrNameTaken) { // held by another deployment's machine
			return nil, false, wrap(ferr)
		}
		if ferr != nil {
			return nil, false, wrap(fmt.Errorf("%w; then looking for an existing machine: %w", err, ferr))
		}
		if found != nil {
			return found, false, nil
		}
		if taken || attempt >= c.maxRetries {
			return nil, false, wrap(err)
		}
		delay := c.backoff(attempt)
		if c.beyondDeadline(ctx, delay) {
			return nil, false, wrap(err)
		}
		if serr := c.sleep(ctx, delay); serr != nil {
			return nil, false, wrap(err)
		}
	}
}

// ambiguousCreate reports whether a create may have happened although the
// call failed.
func ambiguousCreate(ctx context.Context, err error) bool {
	// Refused before acting: invalid input, capacity, rate limits (429 or the
	// client-side limiter).
	if errors.Is(err, ErrInvalidInput) || errors.Is(err, ErrCapacity) || errors.Is(err, ErrRateLimited) {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode == http.StatusRequestTimeout || apiErr.StatusCode >= 500
	}
	if errors.Is(err, ErrUnexpectedResponse) { // a 2xx came back: it happened
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ctx.Err() == nil // only the attempt's own deadline; nothing to look up with a dead ctx
	}
	return isNetworkError(err) && !isDialError(err)
}

// findDeploymentMachine returns the live machine of deploymentID, or nil. It
// lists by metadata first; when the name is known to be taken and no machine
// carries the metadata, it lists summaries to find the holder of the name and
// adopts it unless it belongs to another deployment.
func (c *Client) findDeploymentMachine(ctx context.Context, deploymentID, name string, nameTaken bool) (*Machine, error) {
	ms, err := c.ListMachines(ctx, ListMachinesOptions{Metadata: map[string]string{MetadataDeploymentID: deploymentID}})
	if err != nil {
		return nil, err
	}
	var live []Machine
	for _, m := range ms {
		if m.State == StateDestroyed || m.State == StateDestroying {
			continue
		}
		// The server filtered by metadata; check again in case it did not.
		if m.DeploymentID() == deploymentID || (m.Config == nil && m.Name == name) {
			live = append(live, m)
		}
	}
	if len(live) > 0 {
		sort.SliceStable(live, func(i, j int) bool {
			if (live[i].Name == name) != (live[j].Name == name) {
				return live[i].Name == name
			}
			return live[i].CreatedAt.Before(live[j].CreatedAt)
		})
		m := live[0]
		return &m, nil
	}
	if !nameTaken {
		return nil, nil
	}
	all, err := c.ListMachines(ctx, ListMachinesOptions{Summary: true})
	if err != nil {
		return nil, err
	}
	for _, s := range all {
		if s.Name != name || s.State == StateDestroyed || s.State == StateDestroying || !ValidMachineID(s.ID) {
			continue
		}
		m, err := c.GetMachine(ctx, s.ID)
		if err != nil {
			return nil, err
		}
		if owner := m.DeploymentID(); owner != "" && owner != deploymentID {
			return nil, fmt.Errorf("machine %s named %s belongs to deployment %s: %w", m.ID, name, owner, ErrNameTaken)
		}
		return m, nil
	}
	return nil, nil
}
