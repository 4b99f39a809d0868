import { DatasetSchema, IdSchema, PageQuerySchema, PageSchema, SlugSchema, TagSchema, TimestampSchema } from '@insitu/core';
import Type, { type Static } from 'typebox';

const Closed = { additionalProperties: false } as const;

export const RoleSchema = Type.Enum(['admin', 'provider', 'developer', 'user'] as const, {
  description: 'admin: manages the organisation and holds every role in it; provider: offers data; developer: writes applications; user: calls services',
});
const Email = Type.String({ format: 'email', maxLength: 254 });
const Password = Type.String({ minLength: 10, maxLength: 200, description: 'At least 10 characters' });
const DisplayName = Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001f\\u007f]+$' });
const Description = Type.String({ maxLength: 4000 });

// Resources

export const OrgSchema = Type.Object(
  {
    id: IdSchema,
    name: Type.String(),
    displayName: Type.String(),
    kind: Type.Enum(['platform', 'member'] as const),
    status: Type.Enum(['active', 'pending', 'suspended'] as const),
    createdAt: TimestampSchema,
  },
);

export const UserSchema = Type.Object(
  { id: IdSchema, email: Type.String(), name: Type.String(), status: Type.String(), createdAt: TimestampSchema },
);

export const MembershipSchema = Type.Object({
  orgId: IdSchema,
  orgName: Type.String(),
  orgStatus: Type.String(),
  roles: Type.Array(RoleSchema),
});

export const MeSchema = Type.Object({ user: UserSchema, platformAdmin: Type.Boolean(), memberships: Type.Array(MembershipSchema) });

export const MemberSchema = Type.Object({ user: UserSchema, roles: Type.Array(RoleSchema) });

export const ProviderSchema = Type.Object(
  { id: IdSchema, orgId: IdSchema, name: Type.String(), displayName: Type.String(), description: Type.String(), createdAt: TimestampSchema },
);

export const EnrolmentTokenSchema = Type.Object(
  {
    id: IdSchema,
    providerId: IdSchema,
    note: Type.String(),
    state: Type.Enum(['unused', 'used', 'expired', 'revoked'] as const),
    createdAt: TimestampSchema,
    expiresAt: TimestampSchema,
    usedAt: Type.Optional(TimestampSchema),
    agentId: Type.Optional(IdSchema),
  },
);

export const AgentSchema = Type.Object(
  {
    id: IdSchema,
    providerId: IdSchema,
    name: Type.String(),
    hostname: Type.String(),
    version: Type.String(),
    state: Type.Enum(['active', 'revoked'] as const),
    createdAt: TimestampSchema,
    lastSeenAt: Type.Optional(TimestampSchema),
  },
);

export const SessionSchema = Type.Object({ token: Type.String({ description: 'Bearer token; shown once' }), expiresAt: TimestampSchema, user: UserSchema });

// Inputs

export const SignupBody = Type.Object(
  {
    org: Type.Object({ name: SlugSchema, displayName: Type.Optional(DisplayName) }, Closed),
    user: Type.Object({ email: Email, name: DisplayName, password: Password }, Closed),
  },
  Closed,
);
export const SignInBody = Type.Object({ email: Email, password: Type.String({ minLength: 1, maxLength: 200 }) }, Closed);
export const CreateOrgBody = Type.Object({ name: SlugSchema, displayName: Type.Optional(DisplayName) }, Closed);
export const UpdateOrgBody = Type.Object({ displayName: DisplayName }, Closed);
export const AddMemberBody = Type.Object(
  {
    email: Email,
    name: Type.Optional(DisplayName),
    password: Type.Optional(Password),
    roles: Type.Array(RoleSchema, { minItems: 1, maxItems: 4, uniqueItems: true }),
  },
  Closed,
);
export const SetRolesBody = Type.Object({ roles: Type.Array(RoleSchema, { minItems: 1, maxItems: 4, uniqueItems: true }) }, Closed);
export const UpdateMeBody = Type.Object(
  { name: Type.Optional(DisplayName), password: Type.Optional(Password), currentPassword: Type.Optional(Type.String({ maxLength: 200 })) },
  Closed,
);
export const CreateProviderBody = Type.Object(
  { orgId: IdSchema, name: SlugSchema, displayName: Type.Optional(DisplayName), description: Type.Optional(Description) },
  Closed,
);
export const UpdateProviderBody = Type.Object({ displayName: Type.Optional(DisplayName), description: Type.Optional(Description) }, Closed);
export const CreateTokenBody = Type.Object(
  {
    providerId: IdSchema,
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 30 * 86400 })),
    note: Type.Optional(Type.String({ maxLength: 200, pattern: '^[^\\u0000-\\u001f\\u007f]*$' })),
  },
  Closed,
);
export const EnrolBody = Type.Object(
  {
    token: Type.String({ minLength: 1, maxLength: 200 }),
    name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' }),
    hostname: Type.Optional(Type.String({ maxLength: 255, pattern: '^[^\\u0000-\\u001f\\u007f]*$' })),
    version: Type.Optional(Type.String({ maxLength: 64, pattern: '^[^\\u0000-\\u001f\\u007f]*$' })),
  },
  Closed,
);
export const EnrolResult = Type.Object({
  agent: AgentSchema,
  credential: Type.String({ description: 'The long-lived agent credential; shown once, store it with mode 0600' }),
});

// Queries and params

export const IdParams = Type.Object({ id: IdSchema }, Closed);
export const MemberParams = Type.Object({ id: IdSchema, userId: IdSchema }, Closed);
export const DatasetParams = Type.Object({ id: IdSchema, name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' }) }, Closed);

export const ListQuery = Type.Object({ ...PageQuerySchema.properties }, Closed);
export const OrgListQuery = Type.Object({ ...PageQuerySchema.properties, status: Type.Optional(Type.Enum(['active', 'pending', 'suspended'] as const)) }, Closed);
export const ProviderListQuery = Type.Object({ ...PageQuerySchema.properties, org: Type.Optional(IdSchema) }, Closed);
export const ByProviderQuery = Type.Object({ ...PageQuerySchema.properties, provider: IdSchema }, Closed);
export const AgentListQuery = Type.Object({ ...PageQuerySchema.properties, provider: Type.Optional(IdSchema) }, Closed);
export const DatasetSearchQuery = Type.Object(
  {
    ...PageQuerySchema.properties,
    q: Type.Optional(Type.String({ maxLength: 200, description: 'Words to find in names, tags, column names and descriptions (prefixes match)' })),
    tag: Type.Optional(Type.Array(TagSchema, { maxItems: 10, description: 'Only datasets with every one of these tags' })),
    provider: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Provider id or name' })),
    column: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Only datasets with a column of this name (case-insensitive)' })),
  },
  Closed,
);

export const OrgPage = PageSchema(OrgSchema);
export const UserPage = PageSchema(UserSchema);
export const MemberPage = PageSchema(MemberSchema);
export const ProviderPage = PageSchema(ProviderSchema);
export const TokenPage = PageSchema(EnrolmentTokenSchema);
export const AgentPage = PageSchema(AgentSchema);
export const DatasetPage = PageSchema(DatasetSchema);

export type SignupBodyT = Static<typeof SignupBody>;
