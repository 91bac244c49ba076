package flyclient

// LimiterSizes returns the number of live Get and action buckets.
func (c *Client) LimiterSizes() (get, action int) { return c.getLim.size(), c.actionLim.size() }
