import { type Command, Option } from 'commander';
import { emailOption, positiveInt, remote, type Remote, type CommandContext } from './options.js';

/**
 * Registers `login`, `logout`, `org`, `user`, `member`, `provider` and `catalog`. Each action imports its command's module when it runs, so
 * `insitu --help` loads none of the platform's packages.
 */
export function registerAccounts(program: Command, ctx: CommandContext): void {
  const { io } = ctx;
  remote(
    program
      .command('login')
      .description('sign in to a platform and keep the session for its URL in your profile file (mode 0600)')
      .requiredOption('--email <email>', 'your email', emailOption)
      .option('--password-stdin', 'read the password from standard input'),
  ).action(async (options: Remote & { email: string; passwordStdin?: boolean }) => {
    await (await import('../commands/accounts.js')).runLogin(options, io);
  });
  remote(program.command('logout').description('revoke the saved session for the URL and forget it')).action(
    async (options: Remote) => {
      await (await import('../commands/accounts.js')).runLogout(options, io);
    },
  );

  const org = program.command('org').description('organisations');
  remote(org.command('list').description('organisations you belong to (platform admins: all)')).action(
    async (options: Remote) => {
      await (await import('../commands/accounts.js')).runOrgList(options, io);
    },
  );
  remote(
    org
      .command('create <name>')
      .description('create an organisation (platform admins)')
      .option('--display-name <text>', 'its display name'),
  ).action(async (name: string, options: Remote & { displayName?: string }) => {
    await (await import('../commands/accounts.js')).runOrgCreate(name, options, io);
  });
  remote(org.command('show <org>').description('one organisation (name or id)')).action(
    async (ref: string, options: Remote) => {
      await (await import('../commands/accounts.js')).runOrgShow(ref, options, io);
    },
  );

  const user = program.command('user').description('users');
  remote(user.command('me').description('who you are signed in as, with your organisations and roles')).action(
    async (options: Remote) => {
      await (await import('../commands/accounts.js')).runUserMe(options, io);
    },
  );
  remote(user.command('list').description('every user (platform admins)')).action(async (options: Remote) => {
    await (await import('../commands/accounts.js')).runUserList(options, io);
  });

  const member = program.command('member').description('members of an organisation and their roles');
  remote(member.command('list <org>').description('members and roles')).action(async (ref: string, options: Remote) => {
    await (await import('../commands/accounts.js')).runMemberList(ref, options, io);
  });
  remote(
    member
      .command('add <org> <email>')
      .description("add a user (created if new) with roles; --password-stdin sets a new user's password")
      .addOption(
        new Option('--role <role>', 'a role (repeatable)')
          .choices(['admin', 'provider', 'developer', 'user'])
          .argParser((value: string, previous: string[] = []) => [...previous, value]),
      )
      .option('--name <name>', "a new user's name")
      .option('--password-stdin', "read a new user's password from standard input"),
  ).action(
    async (
      ref: string,
      email: string,
      options: Remote & { role?: string[]; name?: string; passwordStdin?: boolean },
    ) => {
      await (
        await import('../commands/accounts.js')
      ).runMemberAdd(ref, email, { ...options, role: options.role ?? [] }, io);
    },
  );
  remote(member.command('remove <org> <user>').description('remove a member (email or usr_…)')).action(
    async (ref: string, who: string, options: Remote) => {
      await (await import('../commands/accounts.js')).runMemberRemove(ref, who, options, io);
    },
  );

  const provider = program.command('provider').description('data providers');
  remote(
    provider
      .command('create <name>')
      .description("create a provider for an organisation (its providers' role)")
      .requiredOption('--org <org>', 'the organisation (name or id)')
      .option('--display-name <text>', 'display name')
      .option('--description <text>', 'what it offers'),
  ).action(async (name: string, options: Remote & { org: string; displayName?: string; description?: string }) => {
    await (await import('../commands/catalog.js')).runProviderCreate(name, options, io);
  });
  remote(provider.command('list').description('providers').option('--org <org>', 'only of this organisation')).action(
    async (options: Remote & { org?: string }) => {
      await (await import('../commands/catalog.js')).runProviderList(options, io);
    },
  );

  const catalog = program.command('catalog').description('the dataset catalog: metadata only, never rows');
  remote(
    catalog
      .command('search [words]')
      .description('find datasets by words, tags, provider or column')
      .option(
        '--tag <tag>',
        'with this tag (repeatable)',
        (value: string, previous: string[]) => [...previous, value],
        [] as string[],
      )
      .option('--provider <provider>', 'of this provider (name or id)')
      .option('--column <name>', 'with a column of this name')
      .option('--limit <n>', 'how many (at most 100)', (v: string) => positiveInt(v, '--limit', 100), 20),
  ).action(
    async (
      words: string | undefined,
      options: Remote & { tag: string[]; provider?: string; column?: string; limit: number },
    ) => {
      await (await import('../commands/catalog.js')).runCatalogSearch(words, options, io);
    },
  );
  remote(catalog.command('show <dataset>').description('a dataset and its columns: PROVIDER/DATASET or ds_…')).action(
    async (ref: string, options: Remote) => {
      await (await import('../commands/catalog.js')).runCatalogShow(ref, options, io);
    },
  );
}
