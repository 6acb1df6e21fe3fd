package application

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/sscard/platform/shared/card"
	"github.com/sscard/platform/shared/person"
	"github.com/sscard/platform/shared/pii"
	"github.com/sscard/platform/shared/platform"
)

// S3Store keeps photos in a bucket through the S3 API (MinIO).
type S3Store struct {
	Client *s3.Client
	Bucket string
}

// Put implements ObjectStore.
func (s S3Store) Put(ctx context.Context, key string, body []byte, contentType, sha256Hex string) error {
	var opts []func(*s3.Options)
	if sha256Hex != "" {
		opts = append(opts, withPayloadHash(sha256Hex))
	}
	_, err := s.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key),
		Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String(contentType)}, opts...)
	return err
}

// withPayloadHash hands the signer the payload's SHA-256 (hex), which it would otherwise
// compute by reading the body once more. The value lives on the operation's own stack
// (the client clears stack values as an operation starts), so it goes in as middleware
// ahead of the signer's hashing step, which skips its work when the value is set.
func withPayloadHash(sha256Hex string) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("sscard.PayloadHash",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					return next.HandleFinalize(v4.SetPayloadHash(ctx, sha256Hex), in)
				}), middleware.Before)
		})
	}
}

// Delete implements ObjectStore.
func (s S3Store) Delete(ctx context.Context, key string) error {
	_, err := s.Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
	return err
}

// SweepOrphanPhotos deletes photo objects older than grace that no application_photos
// row names: uploads whose transaction failed and whose immediate delete failed too.
// It returns how many it deleted.
func (s *Service) SweepOrphanPhotos(ctx context.Context, store S3Store, grace time.Duration) (int, error) {
	cutoff := s.now().Add(-grace)
	deleted := 0
	p := s3.NewListObjectsV2Paginator(store.Client, &s3.ListObjectsV2Input{Bucket: aws.String(store.Bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return deleted, err
		}
		for _, o := range page.Contents {
			if o.Key == nil || o.LastModified == nil || o.LastModified.After(cutoff) {
				continue
			}
			var referenced bool
			if err := s.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM application_photos WHERE object_key = $1)`, *o.Key).
				Scan(&referenced); err != nil {
				return deleted, err
			}
			if !referenced {
				if err := store.Delete(ctx, *o.Key); err != nil {
					return deleted, err
				}
				deleted++
			}
		}
	}
	return deleted, nil
}

// Open wires the service of a function instance: the person register and the sealing of
// the applicant's details share one keyring (pii-kek, pii-index-key), photos go to
// PhotoBucket, the audit log signs checkpoints when audit-sign-key is mounted, the card
// register uses the province's card settings, and the producer and carrier are simulated
// (no public API exists).
func Open(d *platform.Deps) (*Service, error) {
	if d.Postgres == nil || d.S3 == nil {
		return nil, errors.New("card applications need Postgres and the object store")
	}
	kr, err := pii.FromSecrets(d.Secrets, pii.PGStore{DB: d.Postgres})
	if err != nil {
		return nil, err
	}
	// The card register's settings are loss-report's (card_status_codes …): the events of
	// cards card-apply cancels must carry the province's codes too.
	cards, err := card.LoadConfig(d.Env)
	if err != nil {
		return nil, err
	}
	return &Service{Pool: d.Postgres, People: person.NewStore(d.Postgres, kr), Sealer: kr, Audit: d.Audit,
		Photos: S3Store{Client: d.S3, Bucket: PhotoBucket}, Reports: S3Store{Client: d.S3, Bucket: ReportBucket}, Factory: SimFactory{},
		Cards: cards, Unavailable: d.Unavailable}, nil
}
