package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/kiosk"
	"github.com/sscard/platform/shared/pii"
	"github.com/sscard/platform/shared/platform"
)

// Buckets: failure workbooks go with the other reports; kiosk logs have a bucket of their
// own (kiosk_log_bucket), created on first use.
const (
	ReportBucket  = "reports"
	LogBucketName = "kiosk-logs"
)

// open builds the kiosk service from the warm dependencies and settings:
//
//	kiosk_offline_after  silence after which a kiosk is offline and alerted [3m]
//	kiosk_command_ttl    how long a command waits for its kiosk before it expires [24h]
//	kiosk_log_bucket     bucket of kiosk log files [kiosk-logs]
func open(d *platform.Deps) (*kiosk.Service, error) {
	keys, err := callsign.LoadServerKeys(d.Secrets)
	if err != nil {
		return nil, err
	}
	kr, err := pii.FromSecrets(d.Secrets, pii.PGStore{DB: d.Postgres})
	if err != nil {
		return nil, err
	}
	s := &kiosk.Service{DB: d.Postgres, MACKey: keys.RegistryMAC, Log: d.Log, Source: d.Config.EventSource,
		CardIndex: func(cardNo string) ([]byte, error) { return kr.BlindIndex(pii.KindExact, cardNo) },
		Reports:   &s3Store{client: d.S3, bucket: ReportBucket},
		Logs:      &s3Store{client: d.S3, bucket: d.Env.String("kiosk_log_bucket", LogBucketName), create: true},
	}
	s.OfflineAfter = d.Env.Duration("kiosk_offline_after", kiosk.OfflineAfter)
	s.CommandTTL = d.Env.Duration("kiosk_command_ttl", 24*time.Hour)
	if s.OfflineAfter <= 0 || s.CommandTTL <= 0 {
		d.Env.Fail("kiosk_offline_after, kiosk_command_ttl", "must be positive")
	}
	return s, d.Env.Err()
}

// s3Store keeps objects in one bucket through the S3 API (MinIO).
type s3Store struct {
	client *s3.Client
	bucket string
	create bool // create the bucket on first use

	once  sync.Mutex
	ready bool
}

func (s *s3Store) ensure(ctx context.Context) error {
	if !s.create {
		return nil
	}
	s.once.Lock()
	defer s.once.Unlock()
	if s.ready {
		return nil
	}
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)}); err != nil {
		_, err = s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.bucket)})
		var owned *types.BucketAlreadyOwnedByYou
		var exists *types.BucketAlreadyExists
		if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
			return err
		}
	}
	s.ready = true
	return nil
}

func (s *s3Store) Put(ctx context.Context, key string, body []byte, contentType string) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key),
		Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String(contentType)})
	return err
}

func (s *s3Store) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}
