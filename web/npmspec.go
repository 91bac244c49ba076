package web

import (
	"fmt"
	"net/url"
	"strings"
)

// Limits of a package spec. maxPackageNameLength is npm's own limit on a
// package name; maxPackageSpecLength is the database's limit on the whole
// spec (store.MaxPackageLength).
const (
	maxPackageNameLength = 214
	maxPackageSpecLength = 256
)

// ValidatePackageSpec reports whether spec is an npm registry package spec that
// a deployment may run: a package name, optionally followed by "@" and an exact
// version, a semver range or a dist-tag. It returns an error that says what is
// wrong, or nil.
//
// The name follows npm's rules for new packages (those of
// validate-npm-package-name): at most 214 characters, lower case, URL-safe,
// not starting with "." or "_", none of ~'!()* and, when scoped, exactly
// "@scope/name". What follows the name is either a range in node-semver's
// grammar (which includes exact versions such as 1.2.3, ^1.2.0, ~1.2, 1.x,
// >=1.0.0 <2.0.0, 1.0.0 - 2.0.0 and ranges joined by ||) or a dist-tag
// (latest, next, beta-2: a letter, then letters, digits, ".", "_" or "-").
//
// Every other form npm accepts is refused on purpose: git URLs and GitHub
// shorthands (user/repo, github:user/repo), tarball URLs, local paths (./pkg,
// /pkg, file:) and aliases (npm:other@1). The runner installs the package from
// the registry; those forms would fetch code from elsewhere or name files on
// the runner, and none of them is a package the platform can show or audit by
// name.
func ValidatePackageSpec(spec string) error {
	if spec == "" {
		return fmt.Errorf("package is required: give an npm package name such as @modelcontextprotocol/server-everything, optionally with @version")
	}
	if len(spec) > maxPackageSpecLength {
		return fmt.Errorf("package is longer than %d characters", maxPackageSpecLength)
	}
	if strings.TrimSpace(spec) != spec {
		return fmt.Errorf("package %q has leading or trailing spaces", spec)
	}
	for _, prefix := range []string{"git+", "git:", "git@", "github:", "gitlab:", "bitbucket:", "gist:", "http:", "https:", "file:", "npm:", "link:", "workspace:"} {
		if strings.HasPrefix(strings.ToLower(spec), prefix) {
			return fmt.Errorf("package %q is a %s spec: only npm registry packages are allowed (name, name@version, name@range or name@tag)", spec, strings.TrimSuffix(prefix, ":"))
		}
	}
	if strings.HasPrefix(spec, ".") || strings.HasPrefix(spec, "/") || strings.HasPrefix(spec, "~") || strings.HasSuffix(spec, ".tgz") || strings.HasSuffix(spec, ".tar.gz") {
		return fmt.Errorf("package %q looks like a path or tarball: only npm registry packages are allowed (name, name@version, name@range or name@tag)", spec)
	}
	name, suffix, hasSuffix := splitPackageSpec(spec)
	if err := validatePackageName(name); err != nil {
		return err
	}
	if !hasSuffix {
		return nil
	}
	if suffix == "" {
		return fmt.Errorf("package %q ends with \"@\": put a version, range or tag after it, or drop the \"@\"", spec)
	}
	if validSemverRange(suffix) || validDistTag(suffix) {
		return nil
	}
	return fmt.Errorf("package %q: %q is neither a semver version or range (1.2.3, ^1.2.0, ~1.2, >=1.0.0 <2.0.0) nor a dist-tag (latest, next)", spec, suffix)
}

// splitPackageSpec splits spec into the package name and what follows its
// "@" separator. A leading "@" belongs to a scope, not to the separator.
func splitPackageSpec(spec string) (name, suffix string, hasSuffix bool) {
	start := 0
	if strings.HasPrefix(spec, "@") {
		start = 1
	}
	i := strings.Index(spec[start:], "@")
	if i < 0 {
		return spec, "", false
	}
	return spec[:start+i], spec[start+i+1:], true
}

// validatePackageName applies npm's naming rules for new packages.
func validatePackageName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("package name is empty")
	case len(name) > maxPackageNameLength:
		return fmt.Errorf("package name is longer than %d characters", maxPackageNameLength)
	case strings.ToLower(name) != name:
		return fmt.Errorf("package name %q contains capital letters: npm package names are lower case", name)
	case name == "node_modules" || name == "favicon.ico":
		return fmt.Errorf("package name %q is not allowed by npm", name)
	}
	if strings.HasPrefix(name, "@") {
		scope, pkg, ok := strings.Cut(name[1:], "/")
		if !ok || scope == "" || pkg == "" || strings.Contains(pkg, "/") {
			return fmt.Errorf("package name %q is not a scoped name of the form @scope/name", name)
		}
		if err := validateNamePart(name, scope); err != nil {
			return err
		}
		return validateNamePart(name, pkg)
	}
	if strings.Contains(name, "/") {
		return fmt.Errorf("package name %q contains \"/\": that is a GitHub shorthand or a path; only npm registry packages (name or @scope/name) are allowed", name)
	}
	return validateNamePart(name, name)
}

// validateNamePart checks one part of a name (the scope, or the name proper).
func validateNamePart(name, part string) error {
	if strings.HasPrefix(part, ".") || strings.HasPrefix(part, "_") {
		return fmt.Errorf("package name %q: a name cannot start with %q", name, part[:1])
	}
	if strings.ContainsAny(part, "~'!()*") {
		return fmt.Errorf("package name %q contains one of the special characters ~'!()*", name)
	}
	// npm requires encodeURIComponent(part) == part; url.PathEscape differs
	// from it only in characters already refused above or below.
	for _, r := range part {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return fmt.Errorf("package name %q contains %q: names may hold only lower-case letters, digits, \"-\", \".\" and \"_\"", name, r)
		}
	}
	if url.PathEscape(part) != part {
		return fmt.Errorf("package name %q is not URL-safe", name)
	}
	return nil
}

// validDistTag reports whether s is a plausible dist-tag. npm forbids tags
// that parse as a range, which the caller has already tried.
func validDistTag(s string) bool {
	if len(s) > 128 || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(isLetter(c) || isDigit(c) || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validSemverRange reports whether s is a range in node-semver's grammar:
//
//	range-set  ::= range ( logical-or range ) *
//	logical-or ::= ( ' ' ) * '||' ( ' ' ) *
//	range      ::= hyphen | simple ( ' ' simple ) * | ''
//	hyphen     ::= partial ' - ' partial
//	simple     ::= primitive | partial | tilde | caret
//	primitive  ::= ( '<' | '>' | '>=' | '<=' | '=' ) partial
//	partial    ::= xr ( '.' xr ( '.' xr qualifier ? )? )?
//	xr         ::= 'x' | 'X' | '*' | nr
//	nr         ::= '0' | ['1'-'9'] ( ['0'-'9'] ) *
//	tilde      ::= '~' partial
//	caret      ::= '^' partial
//	qualifier  ::= ( '-' pre )? ( '+' build )?
//	pre, build ::= part ( '.' part ) *
//	part       ::= nr | [-0-9A-Za-z]+
//
// An empty range (which means "*") is refused: the caller says so.
func validSemverRange(s string) bool {
	if strings.TrimSpace(s) == "" {
		return false
	}
	for _, r := range strings.Split(s, "||") {
		r = strings.Trim(r, " ")
		if r == "" {
			return false
		}
		if lo, hi, ok := strings.Cut(r, " - "); ok {
			if !validPartial(lo) || !validPartial(hi) {
				return false
			}
			continue
		}
		for _, simple := range strings.Split(r, " ") {
			if !validSimple(simple) {
				return false
			}
		}
	}
	return true
}

// validSimple checks one comparator: an optional operator then a partial.
func validSimple(s string) bool {
	for _, op := range []string{">=", "<=", ">", "<", "=", "~", "^"} {
		if strings.HasPrefix(s, op) {
			return validPartial(s[len(op):])
		}
	}
	return validPartial(s)
}

// validPartial checks a partial version: 1, 1.2, 1.x, 1.2.3-beta.1+build.
func validPartial(s string) bool {
	core, qualifier := s, ""
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		core, qualifier = s[:i], s[i:]
	}
	parts := strings.Split(core, ".")
	if len(parts) > 3 {
		return false
	}
	for _, p := range parts {
		if !validXR(p) {
			return false
		}
	}
	if qualifier == "" {
		return true
	}
	if len(parts) != 3 {
		return false
	}
	pre, build, hasBuild := strings.Cut(qualifier, "+")
	if strings.HasPrefix(qualifier, "+") {
		pre, build, hasBuild = "", qualifier[1:], true
	} else {
		pre = strings.TrimPrefix(pre, "-")
		if pre == "" {
			return false
		}
	}
	if pre != "" && !validDotParts(pre) {
		return false
	}
	return !hasBuild || validDotParts(build)
}

// validXR checks one numeric part of a partial: a number without leading
// zeros, or x, X or *.
func validXR(s string) bool {
	if s == "x" || s == "X" || s == "*" {
		return true
	}
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// validDotParts checks dot-separated identifiers of [-0-9A-Za-z].
func validDotParts(s string) bool {
	for _, p := range strings.Split(s, ".") {
		if p == "" {
			return false
		}
		for i := 0; i < len(p); i++ {
			if c := p[i]; !(isLetter(c) || isDigit(c) || c == '-') {
				return false
			}
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
