package benchkit

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// DeleteObjects removes keys from bucket, a thousand to a request (the S3 limit). A
// benchmark leaves nothing behind: tens of thousands of objects per run, kept, would fill
// the disk and slow every later run's PUTs (directories of millions of entries).
func DeleteObjects(ctx context.Context, c *s3.Client, bucket string, keys []string) error {
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		ids := make([]types.ObjectIdentifier, n)
		for i, k := range keys[:n] {
			ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		if err != nil {
			return err
		}
		if len(out.Errors) > 0 {
			return fmt.Errorf("delete %s: %d objects not deleted, first: %s", bucket, len(out.Errors), aws.ToString(out.Errors[0].Message))
		}
		keys = keys[n:]
	}
	return nil
}

// DeletePrefix removes every object under prefix in bucket.
func DeletePrefix(ctx context.Context, c *s3.Client, bucket, prefix string) error {
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return DeleteObjects(ctx, c, bucket, keys)
}
