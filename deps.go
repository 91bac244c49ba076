//go:build deps

package deps

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/go-logr/zapr"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/onsi/ginkgo/v2"
	_ "github.com/onsi/gomega"
	_ "github.com/pressly/goose/v3"
	_ "go.uber.org/goleak"
	_ "golang.org/x/time/rate"
	_ "k8s.io/client-go/tools/leaderelection"
	_ "sigs.k8s.io/controller-runtime/pkg/controller"
)
