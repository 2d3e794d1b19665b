// The comparison peer of scripts/bench/compare: node oidc-provider 9.x (an OpenID-certified
// provider) configured like Sekimori in that run. It listens on 127.0.0.1 only.
//
//   PORT=8091 node server.js
//
// Equivalence with Sekimori:
// - Endpoints at Sekimori's paths (/token, /introspect, /jwks.json, /authorize), so the same wrk
//   scripts drive both servers.
// - ES256 for ID tokens and for JWT access tokens (RFC 9068, through a resource indicator that
//   every grant defaults to), the same lifetimes as the run gives Sekimori, and the same account
//   claims in both tokens (scopes profile and institution).
// - Confidential clients with client_secret_basic: bench1..benchN (authorization_code,
//   refresh_token, client_credentials; the registered clients) and machine1..machineN
//   (client_credentials only; the peer has no machine accounts, so a client of its own stands for
//   each machine account).
// - Refresh tokens rotate on every use (Sekimori always rotates), and a reused one revokes its grant.
// - A Map adapter that keeps every entry: nothing is evicted, unlike the package's development
//   adapter (an LRU of 1,000 entries per model), so the store grows like a database.
//
// Setup endpoint (exists only in this bench server): POST /bench/mint?kind=refresh|access&client=
// benchK&n=N answers N tokens, one a line. Each token gets its own Grant, saved like an
// authorization-code exchange saves it (the fields are those of lib/helpers/grant_common.js
// issueTokens): the refresh token carries the grant, account, scopes, resource and auth_time an
// offline_access code exchange gives it, so a refresh request then runs the provider's real
// refresh_token grant (find, consume, rotate, sign) exactly as after a browser sign-in. Minting
// through the browser flow instead would need an interaction (prompt=consent is required for
// offline_access) per token: three round trips that only slow the setup. kind=access mints opaque
// access tokens of such a grant, for introspection: oidc-provider refuses to introspect JWT access
// tokens ("Structured JWT Tokens cannot be introspected"), so the peer introspects its opaque
// ones, a Map look-up, while Sekimori verifies an ES256 signature and reads the grant and account.
import { randomBytes } from 'node:crypto';

import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 8091);
const issuer = `http://127.0.0.1:${port}`;
const clientsN = Number(process.env.CLIENTS || 8);
const machinesN = Number(process.env.MACHINES || 8);
const secret = process.env.CLIENT_SECRET || 'bench-peer-secret-0123456789abcdef';
const accessSeconds = Number(process.env.ACCESS_TOKEN_SECONDS || 3600);
const resource = `${issuer}/api`;

// --- a store that keeps every entry ------------------------------------------------------------

const grantIndex = new Map();
const uidIndex = new Map();
const userCodeIndex = new Map();

class MapAdapter {
  constructor(name) {
    this.name = name;
    this.store = new Map();
  }

  async upsert(id, payload) {
    this.store.set(id, payload);
    if (payload.grantId) {
      let entries = grantIndex.get(payload.grantId);
      if (!entries) {
        entries = [];
        grantIndex.set(payload.grantId, entries);
      }
      entries.push([this.store, id]);
    }
    if (payload.uid) uidIndex.set(payload.uid, id);
    if (payload.userCode) userCodeIndex.set(payload.userCode, id);
  }

  async find(id) {
    return this.store.get(id);
  }

  async findByUid(uid) {
    const id = uidIndex.get(uid);
    return id === undefined ? undefined : this.store.get(id);
  }

  async findByUserCode(userCode) {
    const id = userCodeIndex.get(userCode);
    return id === undefined ? undefined : this.store.get(id);
  }

  async consume(id) {
    const payload = this.store.get(id);
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    this.store.delete(id);
  }

  async revokeByGrantId(grantId) {
    for (const [store, id] of grantIndex.get(grantId) || []) store.delete(id);
    grantIndex.delete(grantId);
  }
}

// --- keys: the three algorithms Sekimori publishes, ES256 used --------------------------------

async function jwk(alg, options) {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...options });
  const key = await exportJWK(privateKey);
  return { ...key, alg, use: 'sig', kid: await calculateJwkThumbprint(key) };
}

const keys = [
  await jwk('ES256'),
  await jwk('RS256', { modulusLength: 2048 }),
  await jwk('EdDSA', { crv: 'Ed25519' }),
];

// --- accounts: one person, with Sekimori's claims ----------------------------------------------

const accountId = 'c0ffee00-0000-4000-8000-000000000001';
const accountClaims = {
  sub: accountId,
  name: '関守　花子',
  name_kana: 'セキモリ ハナコ',
  institution_code: '1312345678',
  institution_kind: 'medical',
  account_type: 'general',
  user_id: 'staff01',
};

function claimsFor(scope) {
  const scopes = new Set((scope || '').split(' '));
  const out = { sub: accountId };
  if (scopes.has('profile')) Object.assign(out, { name: accountClaims.name, name_kana: accountClaims.name_kana });
  if (scopes.has('institution')) {
    for (const k of ['institution_code', 'institution_kind', 'account_type', 'user_id']) out[k] = accountClaims[k];
  }
  return out;
}

// --- clients ----------------------------------------------------------------------------------

const clients = [];
for (let i = 1; i <= clientsN; i += 1) {
  clients.push({
    client_id: `bench${i}`,
    client_secret: secret,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    redirect_uris: ['https://rp.example/cb'],
    scope: 'openid profile institution offline_access',
    id_token_signed_response_alg: 'ES256',
  });
}
for (let i = 1; i <= machinesN; i += 1) {
  clients.push({
    client_id: `machine${i}`,
    client_secret: secret,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    id_token_signed_response_alg: 'ES256',
  });
}

const provider = new Provider(issuer, {
  adapter: MapAdapter,
  clients,
  jwks: { keys },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access', 'profile', 'institution'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'name_kana'],
    institution: ['institution_code', 'institution_kind', 'account_type', 'user_id'],
  },
  // Sekimori puts the scope's claims in the ID token itself.
  conformIdTokenClaims: false,
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  findAccount: async (ctx, sub) => (sub === accountId
    ? { accountId, claims: async (use, scope) => claimsFor(scope) }
    : undefined),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'api',
        audience: issuer,
        accessTokenTTL: accessSeconds,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  formats: {
    customizers: {
      // The same account claims as Sekimori's access tokens.
      jwt: async (ctx, token, jwt) => {
        // The access token's own scope is the resource's (api); the claims are those the grant's
        // OpenID scopes release, as in Sekimori's access tokens.
        if (token.accountId) Object.assign(jwt.payload, claimsFor('profile institution'), { sub: jwt.payload.sub });
      },
    },
  },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: accessSeconds,
    ClientCredentials: accessSeconds,
    IdToken: 300,
    AuthorizationCode: 60,
    RefreshToken: 86400,
    Grant: 30 * 86400,
    Session: 12 * 3600,
    Interaction: 3600,
  },
  routes: {
    authorization: '/authorize',
    token: '/token',
    introspection: '/introspect',
    revocation: '/revoke',
    jwks: '/jwks.json',
    userinfo: '/userinfo',
    end_session: '/session/end',
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});
provider.proxy = false;

async function mint(kind, clientId, n) {
  const client = await provider.Client.find(clientId);
  if (!client) throw new Error(`unknown client ${clientId}`);
  const scope = 'openid profile institution offline_access api';
  const authTime = Math.floor(Date.now() / 1000);
  const out = [];
  for (let i = 0; i < n; i += 1) {
    const grant = new provider.Grant({ accountId, clientId });
    grant.addOIDCScope('openid profile institution offline_access');
    grant.addResourceScope(resource, 'api');
    const grantId = await grant.save();
    if (kind === 'refresh') {
      const token = new provider.RefreshToken({
        accountId,
        acr: 'urn:sekimori:acr:password',
        amr: ['pwd'],
        authTime,
        client,
        expiresWithSession: false,
        grantId,
        gty: 'authorization_code',
        resource,
        rotations: 0,
        scope,
      });
      out.push(await token.save());
    } else {
      const token = new provider.AccessToken({
        accountId,
        client,
        grantId,
        gty: 'authorization_code',
        scope: 'openid profile institution',
      });
      out.push(await token.save());
    }
  }
  return out;
}

provider.use(async (ctx, next) => {
  if (ctx.path === '/bench/mint' && ctx.method === 'POST') {
    const { kind, client } = ctx.query;
    const n = Number(ctx.query.n);
    if (!['refresh', 'access'].includes(kind) || !(n > 0 && n <= 100000)) {
      ctx.status = 400;
      ctx.body = 'kind=refresh|access&client=ID&n=1..100000\n';
      return;
    }
    ctx.type = 'text/plain';
    ctx.body = `${(await mint(kind, client, n)).join('\n')}\n`;
    return;
  }
  await next();
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
