// Package pbconv converts between the engine's types and their protobuf
// messages where more than one layer needs the same conversion: the gRPC
// server (the wire contract) and the Redis store (the record format both
// carry a leadrouter.v1.Lead).
package pbconv

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
)

// LeadFromProto converts a wire or stored lead. A submitted_at that is not a
// valid timestamp becomes a time before any valid range, so the engine's
// validation names the field.
func LeadFromProto(l *pb.Lead) engine.Lead {
	if l == nil {
		return engine.Lead{}
	}
	out := engine.Lead{
		ID: l.GetId(), Email: l.GetEmail(), FirstName: l.GetFirstName(), LastName: l.GetLastName(),
		Company: l.GetCompany(), CompanyDomain: l.GetCompanyDomain(), Country: l.GetCountry(),
		Region: l.GetRegion(), PostalCode: l.GetPostalCode(), Industry: l.GetIndustry(),
		EmployeeCount: l.GetEmployeeCount(), Source: l.GetSource(), Product: l.GetProduct(),
		Language: l.GetLanguage(), Attributes: l.GetAttributes(), Score: l.Score,
	}
	if len(out.Attributes) == 0 {
		out.Attributes = nil
	}
	if l.SubmittedAt != nil {
		if l.SubmittedAt.CheckValid() != nil {
			out.SubmittedAt = engine.OutOfRangeTime
		} else {
			out.SubmittedAt = l.SubmittedAt.AsTime()
		}
	}
	return out
}

// LeadToProto converts a lead for the wire or the record.
func LeadToProto(l *engine.Lead) *pb.Lead {
	return &pb.Lead{
		Id: l.ID, Email: l.Email, FirstName: l.FirstName, LastName: l.LastName, Company: l.Company,
		CompanyDomain: l.CompanyDomain, Country: l.Country, Region: l.Region, PostalCode: l.PostalCode,
		Industry: l.Industry, EmployeeCount: l.EmployeeCount, Source: l.Source, Product: l.Product,
		Language: l.Language, Score: l.Score, Attributes: l.Attributes, SubmittedAt: Timestamp(l.SubmittedAt),
	}
}

// Timestamp is t as a protobuf timestamp, nil for the zero time.
func Timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
