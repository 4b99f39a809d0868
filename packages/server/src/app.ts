import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import { InsituError } from '@insitu/core';
import type { AgentPrincipal, AuthMode, Principal, UserPrincipal } from './auth/principal.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route; `user` when not set. */
    auth?: AuthMode;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** Our Fastify instance, typed for TypeBox schemas. */
export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** The signed-in user of a request; agents and anonymous callers are refused. */
export function userOf(request: FastifyRequest): UserPrincipal {
  const principal = request.principal;
  if (principal?.kind === 'user') return principal;
  if (principal) throw new InsituError('INSITU_FORBIDDEN', 'this endpoint is for signed-in users');
  throw new InsituError('INSITU_UNAUTHENTICATED', 'sign in first: send Authorization: Bearer <token>');
}

/** The agent of a request; users are refused. */
export function agentOf(request: FastifyRequest): AgentPrincipal {
  const principal = request.principal;
  if (principal?.kind === 'agent') return principal;
  if (principal) throw new InsituError('INSITU_FORBIDDEN', 'this endpoint is for agents');
  throw new InsituError('INSITU_UNAUTHENTICATED', 'send the agent credential: Authorization: Bearer <credential>');
}
