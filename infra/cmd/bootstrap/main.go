// Command bootstrap prepares the data stores for a run: it applies the database
// migrations and creates the object-store buckets. It is idempotent; `make run` calls it
// on every start, and operators run it before deploying a new release.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sscard/platform/shared/db"
	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/secrets"
)

// DefaultBuckets hold photos, bank statement files, exported reports and model files.
// Object names never carry personal data.
const DefaultBuckets = "photos statements reports models"

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, os.Environ(), log); err != nil {
		log.Error("bootstrap failed", "error", err.Error())
		os.Exit(1)
	}
}

func run(ctx context.Context, environ []string, log *slog.Logger) error {
	e := envconf.New(environ)
	sec := secrets.Reader{Dir: e.String("secret_mount_path", secrets.DefaultMountPath)}
	cfg, err := platform.LoadConfig("bootstrap", environ)
	if err != nil {
		return err
	}
	pw, err := sec.Optional("postgres-password")
	if err != nil {
		return err
	}
	v, err := db.Migrate(ctx, cfg.PostgresDSN, pw)
	if err != nil {
		return err
	}
	log.Info("database migrated", "version", v)

	deps, err := platform.Open(ctx, "bootstrap", cfg, platform.Needs{ObjectStore: true}, sec, log)
	if err != nil {
		return err
	}
	defer deps.Close()
	for _, b := range strings.Fields(e.String("SSCARD_BUCKETS", DefaultBuckets)) {
		_, err := deps.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)})
		var owned *types.BucketAlreadyOwnedByYou
		var exists *types.BucketAlreadyExists
		if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
			return fmt.Errorf("bucket %s: %w", b, err)
		}
		log.Info("bucket ready", "bucket", b)
	}
	return nil
}
