package envtest

// DirOf exposes the cluster's temporary directory to the tests.
func DirOf(p *Postgres) string { return p.dir }

// SetSearchGlob replaces where the server binaries are looked for and returns
// a function restoring it.
func SetSearchGlob(glob string) func() {
	old := searchGlob
	searchGlob = glob
	return func() { searchGlob = old }
}
