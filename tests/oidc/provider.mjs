// A real OpenID Connect provider (the OpenID-certified `oidc-provider`) for
// the dashboards' oauth tests, on loopback only. Settings come from the
// environment the test sets: OIDC_PORT, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET,
// OIDC_REDIRECT_URI, OIDC_JWKS (the signing key, a JSON JWK set the test
// made), OIDC_GROUPS (JSON user -> groups). Its development sign-in form
// accepts any user name: the test chooses who signs in.
import Provider from 'oidc-provider';

const env = process.env;
const port = Number(env.OIDC_PORT);
const groups = JSON.parse(env.OIDC_GROUPS || '{}');

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: env.OIDC_CLIENT_ID,
    client_secret: env.OIDC_CLIENT_SECRET,
    redirect_uris: [env.OIDC_REDIRECT_URI],
    post_logout_redirect_uris: [env.OIDC_REDIRECT_URI.replace(/\/login$/, '/')],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  jwks: JSON.parse(env.OIDC_JWKS),
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  // put the scopes' claims into the id token (the dashboards read it, not userinfo)
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  cookies: { keys: ['oidc-test-cookie-key-0123456789'] },
  ttl: { IdToken: 3600, AccessToken: 3600, Session: 3600, Interaction: 600, Grant: 3600 },
  findAccount: async (ctx, id) => ({
    accountId: id,
    async claims() {
      return {
        sub: id, preferred_username: id, name: id, email: `${id}@example.test`,
        groups: groups[id] || [],
      };
    },
  }),
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on 127.0.0.1:${port}`);
});
