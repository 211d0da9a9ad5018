package tenantheader

import "go.opentelemetry.io/otel/attribute"

func reasonAttrs(r string) attribute.Set { return attribute.NewSet(attribute.String("reason", r)) }
