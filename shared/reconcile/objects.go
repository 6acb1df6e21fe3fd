package reconcile

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Buckets.
const (
	StatementBucket = "statements" // statements/<channel>/<yyyy-mm-dd>/…, his/<yyyy-mm-dd>/…
	ReportBucket    = "reports"    // reconcile/<channel>/<yyyy-mm-dd>/<run id>.xlsx|.csv
)

// Object is one stored object as the job reads it.
type Object struct {
	Key  string
	Size int64
	ETag string
	// Meta is the object's user metadata; "sha256" or "sha1" (hex) is the digest the party
	// that dropped the file stated (WeChat Pay's hash_value), checked against the bytes.
	Meta map[string]string
	Body io.ReadCloser
}

// Objects is the object store as the job needs it.
type Objects interface {
	List(ctx context.Context, bucket, prefix string) ([]string, error)
	Get(ctx context.Context, bucket, key string) (*Object, error)
	Put(ctx context.Context, bucket, key, contentType string, body []byte) error
}

// ErrNoObject: the object does not exist.
var ErrNoObject = errors.New("reconcile: no such object")

// S3Objects is Objects on an S3 API (MinIO).
type S3Objects struct{ Client *s3.Client }

func (o S3Objects) List(ctx context.Context, bucket, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(o.Client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			var nb *types.NoSuchBucket
			if errors.As(err, &nb) {
				return nil, nil
			}
			return nil, err
		}
		for _, c := range page.Contents {
			keys = append(keys, aws.ToString(c.Key))
		}
	}
	slices.Sort(keys)
	return keys, nil
}

func (o S3Objects) Get(ctx context.Context, bucket, key string) (*Object, error) {
	out, err := o.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var nk *types.NoSuchKey
		if errors.As(err, &nk) {
			return nil, ErrNoObject
		}
		return nil, err
	}
	meta := map[string]string{}
	for k, v := range out.Metadata {
		meta[strings.ToLower(k)] = v
	}
	return &Object{Key: key, Size: aws.ToInt64(out.ContentLength), ETag: strings.Trim(aws.ToString(out.ETag), `"`), Meta: meta,
		Body: out.Body}, nil
}

func (o S3Objects) Put(ctx context.Context, bucket, key, contentType string, body []byte) error {
	put := func() error {
		_, err := o.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
			ContentType: aws.String(contentType), Body: bytes.NewReader(body)})
		return err
	}
	err := put()
	var nb *types.NoSuchBucket
	if errors.As(err, &nb) || (err != nil && strings.Contains(err.Error(), "NoSuchBucket")) {
		// The reports bucket is ours: make it on first use.
		if _, cerr := o.Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); cerr != nil &&
			!strings.Contains(cerr.Error(), "BucketAlreadyOwnedByYou") {
			return cerr
		}
		err = put()
	}
	return err
}
