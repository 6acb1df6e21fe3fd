package kiosk

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3Store keeps objects in one bucket through the S3 API (MinIO).
type S3Store struct {
	Client *s3.Client
	Bucket string
	Create bool // create the bucket on first use

	once  sync.Mutex
	ready bool
}

func (s *S3Store) ensure(ctx context.Context) error {
	if !s.Create {
		return nil
	}
	s.once.Lock()
	defer s.once.Unlock()
	if s.ready {
		return nil
	}
	if _, err := s.Client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		_, err = s.Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)})
		var owned *types.BucketAlreadyOwnedByYou
		var exists *types.BucketAlreadyExists
		if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
			return err
		}
	}
	s.ready = true
	return nil
}

// Put implements ObjectStore.
func (s *S3Store) Put(ctx context.Context, key string, body []byte, contentType string) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	_, err := s.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key),
		Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String(contentType)})
	return err
}

// Get implements ObjectStore.
func (s *S3Store) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}
