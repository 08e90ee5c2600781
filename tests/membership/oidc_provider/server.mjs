// OpenID Connect identity provider for the SSO tests, built on oidc-provider.
//
// Configuration comes from environment variables, so a test can start one
// server per case:
//   OIDC_PORT      port to listen on, on 127.0.0.1 only
//   OIDC_CLIENT    JSON: {"client_id", "client_secret", "redirect_uris": [...]}
//   OIDC_ACCOUNTS  JSON: {"<login>": {"email": ..., "email_verified": ...}}
//
// The sign-in page is oidc-provider's development interaction: it accepts any
// password, and the login typed in is the account ID looked up in
// OIDC_ACCOUNTS. The process prints "listening <issuer>" once it accepts
// connections and exits on SIGTERM.
import http from 'node:http';

import Provider from 'oidc-provider';

function readJsonEnv(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is missing; set it to a JSON document`);
  }
  return JSON.parse(value);
}

const port = Number(process.env.OIDC_PORT);
if (!Number.isInteger(port) || port <= 0) {
  throw new Error(`OIDC_PORT is ${process.env.OIDC_PORT}; set it to a free TCP port`);
}
const issuer = `http://127.0.0.1:${port}`;
const client = readJsonEnv('OIDC_CLIENT');
const accounts = readJsonEnv('OIDC_ACCOUNTS');

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: client.client_id,
      client_secret: client.client_secret,
      redirect_uris: client.redirect_uris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  // By default oidc-provider releases these claims from the userinfo
  // endpoint, not in the ID token.
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  async findAccount(ctx, accountId) {
    const account = accounts[accountId];
    if (account === undefined) {
      return undefined;
    }
    return {
      accountId,
      async claims() {
        return { sub: accountId, ...account };
      },
    };
  },
  cookies: { keys: ['test-only-cookie-signing-key'] },
  features: { devInteractions: { enabled: true } },
});

const server = http.createServer(provider.callback());
server.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});

process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  // Keep-alive connections from the browser can hold close() open.
  server.closeAllConnections();
});
